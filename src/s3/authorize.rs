//! The authorization stage: may this principal do this operation? One function,
//! run after authentication and before any handler, for every operation. It reads
//! the rows the decision depends on (the bucket, the object, a copy source) and hands
//! them to the handler, so the handler acts on exactly what was authorized. ACLs
//! decide today; bucket policies, public-access blocks and object lock join here.

use crate::core_state::CoreState;
use crate::error::{meta_error, no_such_bucket};
use crate::error::{ErrorCode, S3Error};
use std::rc::Rc;

use crate::meta::{BucketRow, ObjectRow};
use crate::reclaim::ReadLease;
use crate::s3::acl::{Acl, Permission};
use crate::s3::authenticate::Principal;
use crate::s3::operation::{invalid_version, Access, ObjectRef};

/// What authorization read and allowed.
#[derive(Default)]
pub(crate) struct Granted<'a> {
    /// The bucket the operation acts on (the destination of a copy).
    pub bucket: Option<Rc<BucketRow>>,
    /// The object read (the source of a copy).
    pub object: Option<Rc<ObjectRow>>,
    /// Held when the object's bytes will be read: its files stay until they are open.
    /// Never read: dropping it ends the lease.
    #[allow(dead_code)]
    pub lease: Option<ReadLease<'a>>,
}

impl Granted<'_> {
    /// The bucket row, which every bucket and object access reads.
    pub(crate) fn bucket(&self) -> Result<&BucketRow, S3Error> {
        self.bucket
            .as_deref()
            .ok_or_else(|| S3Error::internal("authorization read no bucket"))
    }

    /// The object row, which object and copy accesses read.
    pub(crate) fn object(&self) -> Result<&ObjectRow, S3Error> {
        self.object
            .as_deref()
            .ok_or_else(|| S3Error::internal("authorization read no object"))
    }
}

/// Decides `access` for `principal`: `AccessDenied` (or the missing bucket or key,
/// to those who may know of its absence), else what was read to decide.
pub(crate) async fn authorize<'a>(
    state: &'a CoreState,
    principal: &Principal,
    access: Access<'_>,
) -> Result<Granted<'a>, S3Error> {
    let requester = principal.requester();
    match access {
        Access::Authenticated => {
            if requester.is_none() {
                return Err(S3Error::new(ErrorCode::AccessDenied));
            }
            Ok(Granted::default())
        }
        Access::BucketOwner(name) => {
            let bucket = existing_bucket(state, name).await?;
            if requester != Some(bucket.owner_id.as_str()) {
                return Err(S3Error::new(ErrorCode::AccessDenied));
            }
            Ok(Granted {
                bucket: Some(bucket),
                ..Granted::default()
            })
        }
        Access::Bucket(name, permission) => {
            let bucket = existing_bucket(state, name).await?;
            if !bucket_allows(&bucket, requester, permission) {
                return Err(S3Error::new(ErrorCode::AccessDenied));
            }
            Ok(Granted {
                bucket: Some(bucket),
                ..Granted::default()
            })
        }
        Access::Object {
            object,
            version,
            permission,
            data,
        } => {
            // Begun before the row is read (see `reclaim`).
            let lease = data.then(|| state.reads.begin());
            let (bucket, row) = object_rows(state, object).await?;
            // Without versioning, every object is its own `null` version.
            if let Some(version) = version.filter(|v| *v != "null") {
                return Err(invalid_version("versionId", version));
            }
            let row = match row {
                Some(row) => row,
                // Only those who may list the bucket learn that a key is absent.
                None if bucket_allows(&bucket, requester, Permission::Read) => {
                    return Err(S3Error::new(ErrorCode::NoSuchKey).field("Key", object.key.clone()));
                }
                None => return Err(S3Error::new(ErrorCode::AccessDenied)),
            };
            if !object_allows(&row, requester, permission) {
                return Err(S3Error::new(ErrorCode::AccessDenied));
            }
            Ok(Granted {
                bucket: Some(bucket),
                object: Some(row),
                lease,
            })
        }
        Access::Copy { bucket, source } => {
            let destination = existing_bucket(state, bucket).await?;
            if !bucket_allows(&destination, requester, Permission::Write) {
                return Err(S3Error::new(ErrorCode::AccessDenied));
            }
            let lease = state.reads.begin();
            let source = ObjectRef {
                bucket: source.bucket.clone(),
                key: source.key.clone(),
            };
            let (_, row) = object_rows(state, &source).await?;
            let row = row.ok_or_else(|| {
                S3Error::new(ErrorCode::NoSuchKey).field("Key", source.key.clone())
            })?;
            if !object_allows(&row, requester, Permission::Read) {
                return Err(S3Error::new(ErrorCode::AccessDenied));
            }
            Ok(Granted {
                bucket: Some(destination),
                object: Some(row),
                lease: Some(lease),
            })
        }
    }
}

fn bucket_allows(bucket: &BucketRow, requester: Option<&str>, permission: Permission) -> bool {
    acl_allows(&bucket.acl, &bucket.owner_id, requester, permission)
}

fn object_allows(row: &ObjectRow, requester: Option<&str>, permission: Permission) -> bool {
    acl_allows(&row.acl, &row.owner_id, requester, permission)
}

/// Whether the stored ACL `acl_json` of a resource owned by `owner` lets `requester` do
/// `permission`. The owner may do anything (`Acl::allows`), so the ACL is only parsed
/// for anyone else: the common request, by the owner, reads no JSON.
fn acl_allows(
    acl_json: &str,
    owner: &str,
    requester: Option<&str>,
    permission: Permission,
) -> bool {
    requester == Some(owner) || Acl::from_json(acl_json, owner).allows(owner, requester, permission)
}

/// The bucket `name`, whoever asks (NoSuchBucket when absent), from this core's
/// cache of current rows when it holds it.
async fn existing_bucket(state: &CoreState, name: &str) -> Result<Rc<BucketRow>, S3Error> {
    state
        .rows
        .bucket(&state.meta, name)
        .await
        .map_err(|e| meta_error(e, name, None))?
        .ok_or_else(|| no_such_bucket(name))
}

/// The bucket and the object, as one snapshot: from this core's cache of current
/// rows, or in one metadata trip.
async fn object_rows(
    state: &CoreState,
    object: &ObjectRef,
) -> Result<(Rc<BucketRow>, Option<Rc<ObjectRow>>), S3Error> {
    state
        .rows
        .bucket_object(&state.meta, &object.bucket, &object.key)
        .await
        .map_err(|e| meta_error(e, &object.bucket, Some(&object.key)))?
        .ok_or_else(|| no_such_bucket(&object.bucket))
}
