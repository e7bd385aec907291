//! The authorization stage: may this principal do this operation? One function,
//! run after authentication and before any handler, for every operation. It reads
//! the rows the decision depends on (the bucket, the object, a copy source) and hands
//! them to the handler, so the handler acts on exactly what was authorized. ACLs
//! decide today; bucket policies, public-access blocks and object lock join here.

use crate::core_state::CoreState;
use crate::error::{meta_error, no_such_bucket};
use crate::error::{ErrorCode, S3Error};
use std::rc::Rc;

use crate::meta::{BucketRow, ObjectRow, VersionSel};
use crate::reclaim::ReadLease;
use crate::s3::acl::{Acl, Permission};
use crate::s3::authenticate::Principal;
use crate::s3::operation::{version_sel, Access, ObjectRef};

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
            // A version id no version can have is refused once the bucket is known.
            let version = match version_sel(version) {
                Ok(version) => version,
                Err(error) => {
                    existing_bucket(state, &object.bucket).await?;
                    return Err(error);
                }
            };
            // Begun before the row is read (see `reclaim`).
            let lease = data.then(|| state.reads.begin());
            let (bucket, row) = object_rows(state, object, version).await?;
            let may_list = bucket_allows(&bucket, requester, Permission::Read);
            let row = match row {
                Some(row) if row.delete_marker => {
                    if !may_list {
                        return Err(S3Error::new(ErrorCode::AccessDenied));
                    }
                    return Err(marker_error(&row, version.is_some()));
                }
                Some(row) => row,
                // Only those who may list the bucket learn that a key is absent.
                None if may_list => return Err(missing(object, version)),
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
            let source_ref = ObjectRef {
                bucket: source.bucket.clone(),
                key: source.key.clone(),
            };
            let (_, row) = object_rows(state, &source_ref, source.version).await?;
            let row = match row {
                Some(row) if row.delete_marker && source.version.is_some() => {
                    return Err(S3Error::with_message(
                        ErrorCode::InvalidRequest,
                        "The source of a copy request may not specifically refer to a delete \
                         marker by version id.",
                    ))
                }
                Some(row) if row.delete_marker => return Err(marker_error(&row, false)),
                Some(row) => row,
                None => return Err(missing(&source_ref, source.version)),
            };
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

/// The answer to a read of a key whose current version is a delete marker (404
/// NoSuchKey), or of a marker by its version id (405 MethodNotAllowed): either way
/// with the marker's headers, as S3 gives them.
fn marker_error(marker: &ObjectRow, by_version: bool) -> S3Error {
    let error = if by_version {
        S3Error::new(ErrorCode::MethodNotAllowed)
            .field("Method", "GET")
            .field("ResourceType", "DeleteMarker")
            .header("Allow", "DELETE")
    } else {
        S3Error::new(ErrorCode::NoSuchKey).field("Key", marker.key.clone())
    };
    error
        .header("x-amz-delete-marker", "true")
        .header("x-amz-version-id", marker.version_label())
}

/// NoSuchKey, or NoSuchVersion for a version id that names none.
fn missing(object: &ObjectRef, version: Option<VersionSel>) -> S3Error {
    match version {
        None => S3Error::new(ErrorCode::NoSuchKey).field("Key", object.key.clone()),
        Some(sel) => S3Error::new(ErrorCode::NoSuchVersion)
            .field("Key", object.key.clone())
            .field("VersionId", version_label(sel)),
    }
}

/// A version id as S3 shows it.
pub(crate) fn version_label(sel: VersionSel) -> String {
    match sel {
        VersionSel::Null => "null".to_string(),
        VersionSel::Seq(seq) => crate::meta::format_version_id(seq),
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

/// The bucket and the object (its current version, or the one `version` names), as
/// one snapshot: a current row from this core's cache of them, or in one metadata trip.
async fn object_rows(
    state: &CoreState,
    object: &ObjectRef,
    version: Option<VersionSel>,
) -> Result<(Rc<BucketRow>, Option<Rc<ObjectRow>>), S3Error> {
    let fail = |e| meta_error(e, &object.bucket, Some(&object.key));
    let rows = match version {
        None => state
            .rows
            .bucket_object(&state.meta, &object.bucket, &object.key)
            .await
            .map_err(fail)?,
        Some(sel) => {
            let (bucket, row) = state
                .meta
                .get_bucket_object_version(&object.bucket, &object.key, sel)
                .await
                .map_err(fail)?;
            bucket.map(|bucket| (Rc::new(bucket), row.map(Rc::new)))
        }
    };
    rows.ok_or_else(|| no_such_bucket(&object.bucket))
}
