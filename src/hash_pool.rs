//! The hash threads: the digests of a large upload (the MD5 of its ETag, the SHA-256 of a
//! signed payload, a SHA `x-amz-checksum`) are updated here rather than on the serving
//! core, each digest on a thread of its own, one chunk at a time. The serving core reads
//! the next chunk from the socket and writes the last one to storage while this one is
//! hashed, so one stream's hashes do not share a core with each other or with that
//! core's other connections. Small bodies are hashed in place: a thread hop would cost
//! more than their hashing.

use std::sync::{Arc, OnceLock};

use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::checksum::{ChecksumAlgorithm, Checksummer};

/// Digests updated together, in order, by one thread. An upload's digests are split into
/// lanes so that each lane can run on a thread of its own.
#[derive(Default)]
pub(crate) struct Lane {
    pub(crate) md5: Option<Md5>,
    pub(crate) sha256: Option<Sha256>,
    pub(crate) checksum: Option<Checksummer>,
}

impl Lane {
    fn update(&mut self, bytes: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(bytes);
        }
        if let Some(sha) = &mut self.sha256 {
            sha.update(bytes);
        }
        if let Some(checksum) = &mut self.checksum {
            checksum.update(bytes);
        }
    }

    /// Splits the digests into lanes that cost about the same: MD5 (with a CRC, which
    /// is cheap next to it), SHA-256, and a SHA checksum.
    fn split(self) -> Vec<Lane> {
        let Lane {
            md5,
            sha256,
            checksum,
        } = self;
        let cheap = checksum.as_ref().is_some_and(|c| {
            matches!(
                c.algorithm(),
                ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
            )
        });
        let (with_md5, alone) = if cheap {
            (checksum, None)
        } else {
            (None, checksum)
        };
        let lanes = [
            Lane {
                md5,
                sha256: None,
                checksum: with_md5,
            },
            Lane {
                sha256,
                ..Lane::default()
            },
            Lane {
                checksum: alone,
                ..Lane::default()
            },
        ];
        lanes
            .into_iter()
            .filter(|lane| lane.md5.is_some() || lane.sha256.is_some() || lane.checksum.is_some())
            .collect()
    }

    fn absorb(&mut self, other: Lane) {
        self.md5 = self.md5.take().or(other.md5);
        self.sha256 = self.sha256.take().or(other.sha256);
        self.checksum = self.checksum.take().or(other.checksum);
    }
}

/// One lane's update with one chunk, sent to the hash threads.
struct Job {
    bytes: Arc<Vec<u8>>,
    lane: Lane,
    done: flume::Sender<Lane>,
}

/// The hash threads, started on first use, one per core; `None` when they could not be
/// started (hashing then stays on the serving cores).
fn threads() -> Option<&'static flume::Sender<Job>> {
    static THREADS: OnceLock<Option<flume::Sender<Job>>> = OnceLock::new();
    THREADS
        .get_or_init(|| {
            let count = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
            // Unbounded, yet bounded in practice: each upload has at most one job per lane
            // in flight.
            let (jobs, rx) = flume::unbounded::<Job>();
            for index in 0..count {
                let rx = rx.clone();
                let started = std::thread::Builder::new()
                    .name(format!("bleepstore-hash-{index}"))
                    .spawn(move || {
                        while let Ok(Job {
                            bytes,
                            mut lane,
                            done,
                        }) = rx.recv()
                        {
                            lane.update(&bytes);
                            // The chunk goes back to its upload only once no job holds it.
                            drop(bytes);
                            let _ = done.send(lane);
                        }
                    });
                if let Err(error) = started {
                    log::warn!(
                        "could not start a hash thread ({error}); hashing on the serving cores"
                    );
                    if index == 0 {
                        return None;
                    }
                    break;
                }
            }
            Some(jobs)
        })
        .as_ref()
}

/// One upload's digests, fed its chunks in order: in place, or (`off_core`) on the hash
/// threads, one chunk behind the reads.
pub(crate) struct ChunkHasher {
    /// The lanes not out on a hash thread.
    home: Vec<Lane>,
    /// Where the hash threads send lanes back, and how many are out.
    done_tx: Option<flume::Sender<Lane>>,
    done_rx: Option<flume::Receiver<Lane>>,
    out: usize,
    /// The chunk the lanes that are out are hashing.
    in_flight: Option<Arc<Vec<u8>>>,
    threads: Option<&'static flume::Sender<Job>>,
}

impl ChunkHasher {
    pub(crate) fn new(digests: Lane, off_core: bool) -> ChunkHasher {
        let threads = if off_core { threads() } else { None };
        let (home, (done_tx, done_rx)) = match threads {
            Some(_) => {
                let (tx, rx) = flume::unbounded();
                (digests.split(), (Some(tx), Some(rx)))
            }
            None => (vec![digests], (None, None)),
        };
        ChunkHasher {
            home,
            done_tx,
            done_rx,
            out: 0,
            in_flight: None,
            threads,
        }
    }

    /// Feeds `chunk`, the next bytes of the body, to every digest. Gives back a chunk whose
    /// hashing is complete: `chunk` itself when hashed in place, else the chunk pushed
    /// before it (`None` the first time).
    pub(crate) async fn push(&mut self, chunk: Vec<u8>) -> Option<Vec<u8>> {
        let (Some(threads), Some(done)) = (self.threads, self.done_tx.clone()) else {
            for lane in &mut self.home {
                lane.update(&chunk);
            }
            return Some(chunk);
        };
        let previous = self.settle().await;
        let shared = Arc::new(chunk);
        for lane in std::mem::take(&mut self.home) {
            let job = Job {
                bytes: Arc::clone(&shared),
                lane,
                done: done.clone(),
            };
            match threads.send(job) {
                Ok(()) => self.out += 1,
                // The threads are gone (never in a running daemon): hash it here.
                Err(flume::SendError(mut job)) => {
                    job.lane.update(&job.bytes);
                    self.home.push(job.lane);
                }
            }
        }
        self.in_flight = Some(shared);
        previous
    }

    /// Waits for the chunk being hashed and gives it back; `None` when there is none.
    pub(crate) async fn settle(&mut self) -> Option<Vec<u8>> {
        let shared = self.in_flight.take()?;
        if let Some(done) = &self.done_rx {
            while self.out > 0 {
                // This hasher holds a sender of the channel, so it cannot close.
                let Ok(lane) = done.recv_async().await else {
                    break;
                };
                self.home.push(lane);
                self.out -= 1;
            }
        }
        // The threads drop their references before sending a lane back.
        Some(Arc::try_unwrap(shared).unwrap_or_else(|shared| shared.as_ref().clone()))
    }

    /// The digests, after the last chunk was settled; `None` if a lane is still out.
    pub(crate) fn finish(self) -> Option<Lane> {
        if self.out > 0 || self.in_flight.is_some() {
            return None;
        }
        let mut all = Lane::default();
        for lane in self.home {
            all.absorb(lane);
        }
        Some(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(checksum: ChecksumAlgorithm) -> Lane {
        Lane {
            md5: Some(Md5::new()),
            sha256: Some(Sha256::new()),
            checksum: Some(Checksummer::new(checksum)),
        }
    }

    fn finals(lane: Lane) -> ([u8; 16], [u8; 32], Vec<u8>) {
        (
            lane.md5.unwrap().finalize().into(),
            lane.sha256.unwrap().finalize().into(),
            lane.checksum.unwrap().finalize(),
        )
    }

    /// Off the core and in place, many chunks of different sizes give the digests of the
    /// whole body, every chunk comes back once, in order, unchanged.
    #[test]
    fn off_core_digests_equal_in_place_digests() {
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let sizes = [1, 1_048_576, 17, 700_000, 4096, 1_048_576];
        for alg in [ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Sha1] {
            let mut results = Vec::new();
            for off_core in [false, true] {
                let mut hasher = ChunkHasher::new(digests(alg), off_core);
                assert_eq!(hasher.threads.is_some(), off_core);
                let mut returned = Vec::new();
                monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let mut at = 0;
                        for size in sizes.iter().cycle() {
                            if at == body.len() {
                                break;
                            }
                            let end = (at + size).min(body.len());
                            if let Some(chunk) = hasher.push(body[at..end].to_vec()).await {
                                returned.extend_from_slice(&chunk);
                            }
                            at = end;
                        }
                        if let Some(chunk) = hasher.settle().await {
                            returned.extend_from_slice(&chunk);
                        }
                    });
                assert!(returned == body, "chunks come back whole and in order");
                results.push(finals(hasher.finish().expect("settled")));
            }
            assert_eq!(results[0], results[1]);
            assert_eq!(results[0].0, <[u8; 16]>::from(Md5::digest(&body)));
            assert_eq!(results[0].1, <[u8; 32]>::from(Sha256::digest(&body)));
        }
    }

    #[test]
    fn lanes_split_by_cost() {
        let count = |alg| digests(alg).split().len();
        assert_eq!(count(ChecksumAlgorithm::Crc64Nvme), 2);
        assert_eq!(count(ChecksumAlgorithm::Sha256), 3);
        let md5_only = Lane {
            md5: Some(Md5::new()),
            ..Lane::default()
        };
        assert_eq!(md5_only.split().len(), 1);
    }

    #[test]
    fn unsettled_hasher_has_no_digests() {
        let mut hasher = ChunkHasher::new(digests(ChecksumAlgorithm::Crc32), true);
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap()
            .block_on(async {
                assert!(hasher.push(vec![1, 2, 3]).await.is_none());
            });
        assert!(hasher.finish().is_none());
    }
}
