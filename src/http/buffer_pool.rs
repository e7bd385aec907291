//! One core's spare connection buffers. A connection rents its read buffer when a
//! request begins and gives it back when it idles or closes, and a large response
//! rents its send buffer for as long as it streams; so an idle connection holds no
//! buffer, and a busy core passes the same few buffers from request to request
//! instead of asking malloc for hundreds of KiB each time (which, with many
//! connections coming and going, also scatters the heap so that it is never given
//! back). The pool is bounded, and trimmed: buffers that no request needed through a
//! whole trim period are freed.

use std::cell::{Cell, RefCell};

use crate::limits;

/// Spare buffers of one size.
pub(crate) struct BufferPool {
    /// The capacity of every buffer rented out; one of another capacity (grown by
    /// its renter) is not taken back.
    size: usize,
    /// Spare buffers kept at most; more given back are freed.
    max: usize,
    /// The spare buffers, empty, the longest unused first.
    free: RefCell<Vec<Vec<u8>>>,
    /// The fewest spare buffers since the last trim: that many went unused.
    low: Cell<usize>,
}

impl BufferPool {
    pub(crate) fn new(size: usize, max: usize) -> BufferPool {
        BufferPool {
            size,
            max,
            free: RefCell::new(Vec::new()),
            low: Cell::new(0),
        }
    }

    /// The capacity of the buffers it rents.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// An empty buffer of `size()` capacity: a spare one, else a new one.
    pub(crate) fn rent(&self) -> Vec<u8> {
        let mut free = self.free.borrow_mut();
        let spare = free.pop();
        self.low.set(self.low.get().min(free.len()));
        spare.unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    /// Takes a rented buffer back (emptied), unless the pool is full or the buffer
    /// no longer has the pool's size; then it is freed.
    pub(crate) fn give_back(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() != self.size {
            return;
        }
        let mut free = self.free.borrow_mut();
        if free.len() < self.max {
            buffer.clear();
            free.push(buffer);
        }
    }

    /// Frees the spare buffers no rent needed since the last trim (the longest
    /// unused go first); returns how many.
    pub(crate) fn trim(&self) -> usize {
        let mut free = self.free.borrow_mut();
        let unused = self.low.get().min(free.len());
        free.drain(..unused);
        free.shrink_to_fit();
        self.low.set(free.len());
        unused
    }

    /// Spare buffers held now.
    #[cfg(test)]
    fn spare(&self) -> usize {
        self.free.borrow().len()
    }
}

/// The buffers of one core's connections.
pub(crate) struct ConnectionBuffers {
    /// Read buffers of `READ_BUFFER_BYTES`: request heads and buffered body bytes.
    pub read: BufferPool,
    /// Send buffers of `SEND_BUFFER_BYTES`: the bytes of a large response on their way.
    pub send: BufferPool,
}

impl Default for ConnectionBuffers {
    fn default() -> ConnectionBuffers {
        ConnectionBuffers {
            read: BufferPool::new(limits::READ_BUFFER_BYTES, limits::READ_BUFFERS_SPARE_MAX),
            send: BufferPool::new(limits::SEND_BUFFER_BYTES, limits::SEND_BUFFERS_SPARE_MAX),
        }
    }
}

impl ConnectionBuffers {
    /// Frees the spare buffers unused since the last trim.
    pub(crate) fn trim(&self) {
        self.read.trim();
        self.send.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_rented_again() {
        let pool = BufferPool::new(1024, 2);
        let mut buffer = pool.rent();
        assert_eq!(buffer.capacity(), 1024);
        buffer.extend_from_slice(b"request");
        let address = buffer.as_ptr();
        pool.give_back(buffer);
        assert_eq!(pool.spare(), 1);
        let again = pool.rent();
        assert_eq!(again.as_ptr(), address, "the same allocation, reused");
        assert!(again.is_empty(), "rented empty");
    }

    #[test]
    fn the_pool_is_bounded_and_takes_back_only_its_size() {
        let pool = BufferPool::new(1024, 2);
        let rented: Vec<_> = (0..3).map(|_| pool.rent()).collect();
        for buffer in rented {
            pool.give_back(buffer);
        }
        assert_eq!(pool.spare(), 2, "the third is freed");
        let mut grown = pool.rent();
        grown.reserve(4096);
        pool.give_back(grown);
        assert_eq!(pool.spare(), 1, "a grown buffer is not kept");
    }

    #[test]
    fn a_trim_frees_what_went_unused_through_the_period() {
        let pool = BufferPool::new(1024, 8);
        let rented: Vec<_> = (0..4).map(|_| pool.rent()).collect();
        for buffer in rented {
            pool.give_back(buffer);
        }
        // All four were rented at once in this period: none went unused.
        assert_eq!(pool.trim(), 0);
        assert_eq!(pool.spare(), 4);
        // A period in which at most one was rented at a time: three went unused.
        let one = pool.rent();
        pool.give_back(one);
        assert_eq!(pool.trim(), 3);
        assert_eq!(pool.spare(), 1);
        // A period with no rent at all: the last one goes.
        assert_eq!(pool.trim(), 1);
        assert_eq!(pool.spare(), 0);
    }
}
