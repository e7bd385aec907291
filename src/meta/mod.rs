//! meta (work in progress).
