//! Data ids: the names of object files. An id is 32 lower-case hex digits (128 bits), unique
//! within a process by construction and across restarts with overwhelming probability, and
//! never derived from a key, so no client-chosen string ever becomes a path.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

/// Characters in a data id.
pub(super) const DATA_ID_LEN: usize = 32;

/// Ids handed out by this process so far. One counter for the whole process (not per thread or
/// per storage handle) makes in-process uniqueness a fact rather than a probability; a relaxed
/// `fetch_add` per object costs nothing next to creating a file.
static ISSUED: AtomicU64 = AtomicU64::new(0);

/// The random half of the id scheme, read once at startup.
#[derive(Clone, Copy, Debug)]
pub(super) struct IdSeed {
    offset: u64,
    salt: u64,
}

impl IdSeed {
    /// Reads 128 random bits from the kernel. Runs on the startup path, so a blocking read of
    /// /dev/urandom is fine, and it needs neither a `rand` crate nor `unsafe` getrandom.
    pub(super) fn from_urandom() -> io::Result<Self> {
        let mut bytes = [0u8; 16];
        File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let [offset, salt] = [&bytes[..8], &bytes[8..]].map(|half| {
            let mut word = [0u8; 8];
            word.copy_from_slice(half);
            u64::from_le_bytes(word)
        });
        Ok(Self { offset, salt })
    }

    /// The next id. Its first 64 bits are a bijective mix of `counter + offset`, so two calls in
    /// one process can never collide and the leading hex digits (the fan-out directory) are
    /// evenly spread. The last 64 bits differ between processes through `salt`, so ids from
    /// different runs collide only if 128 random-looking bits match.
    pub(super) fn next_id(&self) -> String {
        let counter = ISSUED.fetch_add(1, Ordering::Relaxed);
        let unique = mix(counter.wrapping_add(self.offset));
        let salted = mix(counter ^ self.salt);
        format!("{unique:016x}{salted:016x}")
    }
}

impl IdSeed {
    /// Whether this process handed out `id`: the first half inverts to a counter value
    /// already issued, and the second half is that counter's salted mix. Another run's
    /// id passes only if 64 random-looking bits happen to match.
    pub(super) fn issued(&self, id: &str) -> bool {
        if !is_valid_data_id(id) {
            return false;
        }
        let (Ok(unique), Ok(salted)) = (
            u64::from_str_radix(&id[..16], 16),
            u64::from_str_radix(&id[16..], 16),
        ) else {
            return false;
        };
        let counter = unmix(unique).wrapping_sub(self.offset);
        counter < ISSUED.load(Ordering::Relaxed) && mix(counter ^ self.salt) == salted
    }
}

/// The SplitMix64 finaliser: every step (xor-shift, odd multiply) is invertible, so distinct
/// inputs give distinct outputs while the bits look random.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The inverse of `mix`: each step undone in reverse order.
fn unmix(mut x: u64) -> u64 {
    x = undo_xor_shift(x, 31);
    x = x.wrapping_mul(inverse(0x94d0_49bb_1331_11eb));
    x = undo_xor_shift(x, 27);
    x = x.wrapping_mul(inverse(0xbf58_476d_1ce4_e5b9));
    undo_xor_shift(x, 30)
}

/// Undoes `x ^ (x >> shift)`.
fn undo_xor_shift(y: u64, shift: u32) -> u64 {
    let mut x = y;
    let mut step = shift;
    while step < 64 {
        x = y ^ (x >> shift);
        step += shift;
    }
    x
}

/// The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration).
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// True when `id` has the exact shape of a data id. Checked before any id becomes part of a
/// path: lower-case hex has no `/`, no `.`, no NUL, so it cannot escape the data dir.
pub fn is_valid_data_id(id: &str) -> bool {
    id.len() == DATA_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What begins the id of an object the local backend keeps in the metadata database
/// instead of a file (`Storage::new_data_id_for`): `i` and a data id. Never a file
/// name, so a file id and an inline id can never be taken for each other.
const INLINE_MARK: &str = "i";

/// An inline id for the data id `id`.
pub(super) fn inline_id(id: &str) -> String {
    format!("{INLINE_MARK}{id}")
}

/// True when `id` is an inline id (`inline_id`).
pub(super) fn is_inline_id(id: &str) -> bool {
    id.strip_prefix(INLINE_MARK).is_some_and(is_valid_data_id)
}

/// The data id inside an inline id, or the id itself.
pub(super) fn without_mark(id: &str) -> &str {
    match id.strip_prefix(INLINE_MARK) {
        Some(inner) if is_valid_data_id(inner) => inner,
        _ => id,
    }
}

/// The same check as an `io::Result`, for the storage calls that take an id.
pub(super) fn check_data_id(id: &str) -> io::Result<()> {
    if is_valid_data_id(id) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "malformed data id",
        ))
    }
}

/// As `check_data_id`, also admitting inline ids: for the store that holds both
/// the sqlite backend's objects and the local backend's inline ones.
pub(super) fn check_blob_id(id: &str) -> io::Result<()> {
    if is_inline_id(id) {
        Ok(())
    } else {
        check_data_id(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_ids_are_never_file_ids() {
        let seed = IdSeed::from_urandom().unwrap();
        let id = seed.next_id();
        let inline = inline_id(&id);
        assert!(is_inline_id(&inline) && !is_valid_data_id(&inline));
        assert!(!is_inline_id(&id) && !is_inline_id("i") && !is_inline_id("ixyz"));
        assert_eq!(without_mark(&inline), id);
        assert_eq!(without_mark(&id), id);
        assert!(check_blob_id(&inline).is_ok() && check_data_id(&inline).is_err());
        assert!(check_blob_id("i../../x").is_err());
    }

    #[test]
    fn ids_tell_their_run() {
        let mine = IdSeed::from_urandom().unwrap();
        let other = IdSeed::from_urandom().unwrap();
        let ids: Vec<String> = (0..1000).map(|_| mine.next_id()).collect();
        for id in &ids {
            assert!(mine.issued(id), "{id}");
            assert!(!other.issued(id), "{id}");
        }
        assert!(!mine.issued(&other.next_id()));
        assert!(!mine.issued("0123456789abcdef0123456789abcdef"));
        assert!(!mine.issued("not an id"));
        for x in [0, 1, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(unmix(mix(x)), x);
        }
    }
}
