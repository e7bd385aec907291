//! The bounded pool that runs blocking file work (server-side copies, hashing scans,
//! directory walks) off the runtime threads: a fixed set of threads and a bounded
//! queue, so a burst of copies waits its turn instead of starting a thread each.

use std::io;

type Job = Box<dyn FnOnce() + Send>;

pub(super) struct Pool {
    jobs: flume::Sender<Job>,
}

impl Pool {
    /// Starts `threads` workers behind a queue of `queue` jobs.
    pub(super) fn start(threads: usize, queue: usize) -> io::Result<Pool> {
        let (jobs, rx) = flume::bounded::<Job>(queue);
        for index in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("bleepstore-copy-{index}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                })?;
        }
        Ok(Pool { jobs })
    }

    /// Runs `work` on a worker and awaits its result; waits for room when the queue
    /// is full.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let (reply_tx, reply_rx) = flume::bounded(1);
        self.jobs
            .send_async(Box::new(move || {
                let _ = reply_tx.send(work());
            }))
            .await
            .map_err(|_| io::Error::other("the copy pool has stopped"))?;
        reply_rx
            .recv_async()
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a copy job ended without a reply")))
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool")
    }
}
