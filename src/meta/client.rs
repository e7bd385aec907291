//! The runtimes' side of the metadata thread: a cheap-to-clone client whose async
//! methods send one typed request each and await its reply on a oneshot channel.

use std::path::Path;
use std::thread::JoinHandle;

use crate::limits;
use crate::meta::thread::{run, Request};
use crate::meta::{
    schema, BucketRow, CreateBucketOutcome, CredentialRow, ListPage, ListQuery, MetaError,
    ObjectRow, PutCondition,
};

/// Sends requests to the metadata thread. Clone one per runtime.
#[derive(Clone)]
pub struct MetaClient {
    tx: flume::Sender<Request>,
}

/// The metadata thread. It ends after every `MetaClient` is dropped and the
/// queue is drained.
pub struct MetaThread {
    handle: JoinHandle<()>,
}

impl MetaThread {
    /// Waits for the thread to finish: call after dropping every client.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

/// Opens (creating and migrating) the database, then starts the thread.
pub fn start(db_path: &Path) -> Result<(MetaClient, MetaThread), MetaError> {
    let conn = schema::open(db_path)?;
    let (tx, rx) = flume::bounded(limits::META_QUEUE_DEPTH_MAX);
    let handle = std::thread::Builder::new()
        .name("bleepstore-meta".into())
        .spawn(move || run(conn, rx))
        .map_err(|e| MetaError::Sqlite(format!("cannot start metadata thread: {e}")))?;
    Ok((MetaClient { tx }, MetaThread { handle }))
}

pub(crate) type Reply<T> = flume::Sender<Result<T, MetaError>>;

impl MetaClient {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, MetaError> {
        let (reply_tx, reply_rx) = flume::bounded(1);
        self.tx
            .send_async(make(reply_tx))
            .await
            .map_err(|_| MetaError::Closed)?;
        reply_rx.recv_async().await.map_err(|_| MetaError::Closed)?
    }

    pub async fn create_bucket(&self, row: BucketRow) -> Result<CreateBucketOutcome, MetaError> {
        self.call(|reply| Request::CreateBucket(row, reply)).await
    }

    /// Fails with `NoSuchBucket`, or `BucketNotEmpty` while objects or uploads remain.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        self.call(|reply| Request::DeleteBucket(name.to_string(), reply))
            .await
    }

    pub async fn get_bucket(&self, name: &str) -> Result<Option<BucketRow>, MetaError> {
        self.call(|reply| Request::GetBucket(name.to_string(), reply))
            .await
    }

    /// Every bucket, sorted by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRow>, MetaError> {
        self.call(Request::ListBuckets).await
    }

    /// Inserts or replaces an object row. The condition is checked against the
    /// current row in the same transaction step as the write, so two racing
    /// creators cannot both win. Returns the replaced row's data id, which the
    /// caller removes from storage once this returns.
    pub async fn put_object(
        &self,
        row: ObjectRow,
        cond: PutCondition,
    ) -> Result<Option<String>, MetaError> {
        self.call(|reply| Request::PutObject(Box::new(row), cond, reply))
            .await
    }

    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRow>, MetaError> {
        self.call(|reply| Request::GetObject(bucket.to_string(), key.to_string(), reply))
            .await
    }

    /// Removes a row; returns its data id. An absent key is `Ok(None)`.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<String>, MetaError> {
        self.call(|reply| Request::DeleteObject(bucket.to_string(), key.to_string(), reply))
            .await
    }

    pub async fn list_objects(&self, query: ListQuery) -> Result<ListPage, MetaError> {
        self.call(|reply| Request::ListObjects(query, reply)).await
    }

    pub async fn get_credential(
        &self,
        access_key: &str,
    ) -> Result<Option<CredentialRow>, MetaError> {
        self.call(|reply| Request::GetCredential(access_key.to_string(), reply))
            .await
    }

    /// Inserts or replaces a key pair.
    pub async fn put_credential(&self, row: CredentialRow) -> Result<(), MetaError> {
        self.call(|reply| Request::PutCredential(row, reply)).await
    }

    /// Every data id any row references (objects and parts), for the orphan sweep.
    pub async fn all_data_ids(&self) -> Result<Vec<String>, MetaError> {
        self.call(Request::AllDataIds).await
    }
}
