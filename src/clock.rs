//! Time formats (work in progress).
