//! Checksums for x-amz-checksum-* (work in progress).
