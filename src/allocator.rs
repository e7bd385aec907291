//! Tunes glibc's allocator once at startup, so that the memory of a burst of large
//! uploads goes back to the system when they end. This is the one module allowed
//! `unsafe`: the FFI call that sets the allocator's options.
//!
//! glibc serves a request of at least its mmap threshold (128 KiB at start) with an
//! mmap of its own, and returns it with munmap. But by default the first such block
//! freed raises the threshold to its size (up to 32 MiB), and the trim threshold with
//! it: from then on the upload chunks (`UPLOAD_CHUNK_BYTES`), the direct-write stages
//! and the hash buffers come from the per-thread heaps, where what they leave free
//! once the uploads end stays mapped. Measured on these machines, a daemon that had
//! served 8 concurrent 64 MiB PUTs went on holding 36-51 MiB with nothing to do,
//! against 11 MiB with the thresholds fixed, and 10,000 idle connections after it
//! took 63-80 MiB against 31. Setting either threshold turns the raise off.

#![allow(unsafe_code)]

use crate::limits;

/// Fixes the mmap and trim thresholds (see the module's doc); does nothing where the
/// C library is not glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (option, value) in [
        (libc::M_MMAP_THRESHOLD, limits::MALLOC_MMAP_THRESHOLD_BYTES),
        (libc::M_TRIM_THRESHOLD, limits::MALLOC_TRIM_THRESHOLD_BYTES),
    ] {
        // SAFETY: mallopt takes two integers and touches only the allocator's own
        // parameters, under its lock; any value is valid input (it answers 0 when it
        // refuses one).
        let accepted = unsafe { libc::mallopt(option, value) };
        if accepted == 0 {
            log::warn!("malloc refused option {option} = {value}");
        }
    }
}
