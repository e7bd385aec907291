//! Copies and scans for backends with no server-side way to join ranges (the sqlite
//! backend, the gateways): the ranges are read through the backend's own objects,
//! every piece passes through the caller's stage (a hasher) on the backend's copy pool
//! (hashing gigabytes must not hold a serving core), and a copy writes the pieces to
//! a new object of the backend, announced with its total size.

use std::io;

use crate::limits;
use crate::storage::pool::Pool;
use crate::storage::{ByteStage, Storage, Upload};

/// Publishes the ranges, in order, as `target`, passing their bytes through `stage`;
/// returns the size and the stage. On failure nothing is published.
pub(super) async fn copy_ranges<S: ByteStage + 'static>(
    storage: &Storage,
    pool: &Pool,
    ranges: Vec<(String, u64, u64)>,
    target: &str,
    stage: S,
) -> io::Result<(u64, S)> {
    let total: u64 = ranges.iter().map(|(_, _, length)| length).sum();
    let mut upload = storage.create(target, Some(total)).await?;
    match pass(storage, pool, &ranges, stage, Some(&mut upload)).await {
        Ok(stage) => {
            let tail = upload.commit().await?;
            // Nothing else records the copy's bytes in this step: sealed on their own.
            storage.seal(tail).await?;
            Ok((total, stage))
        }
        Err(error) => {
            upload.abort().await;
            Err(error)
        }
    }
}

/// Passes the ranges' bytes through `stage`, in order.
pub(super) async fn scan<S: ByteStage + 'static>(
    storage: &Storage,
    pool: &Pool,
    ranges: Vec<(String, u64, u64)>,
    stage: S,
) -> io::Result<S> {
    pass(storage, pool, &ranges, stage, None).await
}

async fn pass<S: ByteStage + 'static>(
    storage: &Storage,
    pool: &Pool,
    ranges: &[(String, u64, u64)],
    stage: S,
    mut upload: Option<&mut Upload>,
) -> io::Result<S> {
    let mut stage = stage;
    let mut buf = Vec::with_capacity(limits::COPY_BUFFER_BYTES);
    for (data_id, offset, length) in ranges {
        let object = storage.open_range(data_id, *offset, *length).await?;
        let end = offset + length;
        let mut at = *offset;
        while at < end {
            let (read, returned) = object.read_at(buf, at).await;
            buf = returned;
            if read? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "range past the end of the object",
                ));
            }
            buf.truncate((end - at).min(buf.len() as u64) as usize);
            at += buf.len() as u64;
            let (staged, bytes) = pool
                .run(move || {
                    stage.update(&buf);
                    Ok((stage, buf))
                })
                .await?;
            stage = staged;
            buf = match upload.as_mut() {
                Some(upload) => {
                    let (written, returned) = upload.write(bytes).await;
                    written?;
                    returned
                }
                None => bytes,
            };
            buf.clear();
        }
    }
    Ok(stage)
}
