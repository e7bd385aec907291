//! auth (work in progress).
