//! Large response bodies sent from a file with sendfile(2): the kernel moves the
//! file's cached pages to the socket, and the bytes never pass through the daemon's
//! memory. The socket is made non-blocking for each call only, so a full socket
//! answers `EAGAIN` and the connection waits for room as an io_uring poll (the
//! io_uring operations on the socket wait in the kernel; `O_NONBLOCK` would make them
//! fail with `EAGAIN` instead). Reading the file is synchronous: pages the kernel has
//! not read ahead are read on the runtime thread, as nginx's `sendfile on` does.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// The next bytes of a body as a run of an open file: `len` bytes from `offset`.
pub(crate) struct FileRun<'a> {
    pub file: &'a dyn AsRawFd,
    pub offset: u64,
    pub len: u64,
}

/// The error of an object file that ends before the length its metadata records,
/// whoever reads it (sendfile here, or a read of the file into memory).
pub(crate) fn short_file() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "object file shorter than its metadata",
    )
}

/// One sendfile(2) of up to `count` bytes of `file` from `offset` (advanced by what
/// was sent) to `socket`, which is non-blocking for the call: `Ok(None)` when the
/// socket has no room.
pub(super) fn send_some(
    socket: RawFd,
    file: RawFd,
    offset: &mut u64,
    count: usize,
) -> io::Result<Option<usize>> {
    let flags = OFlag::from_bits_truncate(fcntl(socket, FcntlArg::F_GETFL)?);
    fcntl(socket, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let mut at = i64::try_from(*offset).map_err(io::Error::other)?;
    let sent = nix::sys::sendfile::sendfile(socket, file, Some(&mut at), count);
    let restored = fcntl(socket, FcntlArg::F_SETFL(flags));
    *offset = at as u64;
    restored?;
    match sent {
        Ok(n) => Ok(Some(n)),
        Err(nix::errno::Errno::EAGAIN) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}
