//! Access control lists: the owner plus grants of a permission to a grantee (a
//! canonical user, all users, or all authenticated users). Built from canned
//! ACLs, `x-amz-grant-*` headers or an AccessControlPolicy document; stored as
//! JSON text on the bucket or object row; checked for every operation.

use crate::error::{ErrorCode, S3Error};
use crate::s3::xml::{parse_document, XmlWriter};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    fn parse(text: &str) -> Option<Permission> {
        match text {
            "READ" => Some(Permission::Read),
            "WRITE" => Some(Permission::Write),
            "READ_ACP" => Some(Permission::ReadAcp),
            "WRITE_ACP" => Some(Permission::WriteAcp),
            "FULL_CONTROL" => Some(Permission::FullControl),
            _ => None,
        }
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grantee {
    /// A canonical user id.
    User(String),
    /// A predefined group, by its URI.
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acl {
    pub grants: Vec<Grant>,
}

/// The requester as ACLs see it: `None` for an anonymous request.
pub(crate) type Requester<'a> = Option<&'a str>;

impl Acl {
    /// The ACL a canned name stands for. `bucket_owner` matters for the
    /// bucket-owner-* canned ACLs of objects.
    pub(crate) fn canned(name: &str, owner: &str, bucket_owner: &str) -> Result<Acl, S3Error> {
        let mut grants = vec![Grant {
            grantee: Grantee::User(owner.to_string()),
            permission: Permission::FullControl,
        }];
        let group = |uri: &str, permission| Grant {
            grantee: Grantee::Group(uri.to_string()),
            permission,
        };
        match name {
            "private" | "aws-exec-read" => {}
            "public-read" => grants.push(group(ALL_USERS, Permission::Read)),
            "public-read-write" => {
                grants.push(group(ALL_USERS, Permission::Read));
                grants.push(group(ALL_USERS, Permission::Write));
            }
            "authenticated-read" => grants.push(group(AUTHENTICATED_USERS, Permission::Read)),
            "log-delivery-write" => {
                grants.push(group(LOG_DELIVERY, Permission::Write));
                grants.push(group(LOG_DELIVERY, Permission::ReadAcp));
            }
            "bucket-owner-read" | "bucket-owner-full-control" => {
                if bucket_owner != owner {
                    let permission = if name == "bucket-owner-read" {
                        Permission::Read
                    } else {
                        Permission::FullControl
                    };
                    grants.push(Grant {
                        grantee: Grantee::User(bucket_owner.to_string()),
                        permission,
                    });
                }
            }
            _ => {
                return Err(
                    S3Error::with_message(ErrorCode::InvalidArgument, "Invalid canned ACL")
                        .field("ArgumentName", "x-amz-acl")
                        .field("ArgumentValue", name),
                )
            }
        }
        Ok(Acl { grants })
    }

    /// Whether `requester` holds `permission` (the owner holds every permission).
    pub(crate) fn allows(
        &self,
        owner: &str,
        requester: Requester<'_>,
        permission: Permission,
    ) -> bool {
        if requester == Some(owner) {
            return true;
        }
        self.grants.iter().any(|grant| {
            let covers =
                grant.permission == permission || grant.permission == Permission::FullControl;
            let applies = match &grant.grantee {
                Grantee::Group(uri) if uri == ALL_USERS => true,
                Grantee::Group(uri) if uri == AUTHENTICATED_USERS => requester.is_some(),
                Grantee::Group(_) => false,
                Grantee::User(id) => requester == Some(id.as_str()),
            };
            covers && applies
        })
    }

    /// Stored form: `{"grants":[["U:<id>","READ"],["G:<uri>","WRITE"]]}`.
    pub(crate) fn to_json(&self) -> String {
        // Written piece by piece: every PUT stores its object's ACL.
        let mut out = String::with_capacity(64 * self.grants.len() + 16);
        out.push_str("{\"grants\":[");
        for (index, grant) in self.grants.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let (kind, who) = match &grant.grantee {
                Grantee::User(id) => ("[\"U:", id),
                Grantee::Group(uri) => ("[\"G:", uri),
            };
            out.push_str(kind);
            out.extend(who.chars().filter(|c| !matches!(c, '"' | '\\')));
            out.push_str("\",\"");
            out.push_str(grant.permission.as_str());
            out.push_str("\"]");
        }
        out.push_str("]}");
        out
    }

    /// Reads the stored form; a row written before ACLs existed (or unreadable)
    /// falls back to private.
    pub(crate) fn from_json(text: &str, owner: &str) -> Acl {
        let mut grants = Vec::new();
        for item in text.split('[').skip(2) {
            let fields: Vec<&str> = item
                .split('"')
                .filter(|f| !f.trim().is_empty() && !f.contains(',') && !f.contains(']'))
                .collect();
            if let [who, permission, ..] = fields.as_slice() {
                let grantee = match who.split_once(':') {
                    Some(("U", id)) => Grantee::User(id.to_string()),
                    Some(("G", uri)) => Grantee::Group(uri.to_string()),
                    _ => continue,
                };
                if let Some(permission) = Permission::parse(permission) {
                    grants.push(Grant {
                        grantee,
                        permission,
                    });
                }
            }
        }
        if grants.is_empty() {
            grants.push(Grant {
                grantee: Grantee::User(owner.to_string()),
                permission: Permission::FullControl,
            });
        }
        Acl { grants }
    }

    /// The AccessControlPolicy document of GetBucketAcl / GetObjectAcl.
    pub(crate) fn to_xml(&self, owner: &str, owner_name: &str) -> Vec<u8> {
        let mut xml = XmlWriter::new();
        xml.root("AccessControlPolicy");
        xml.open("Owner");
        xml.element("ID", owner);
        xml.element("DisplayName", owner_name);
        xml.close("Owner");
        xml.open("AccessControlList");
        for grant in &self.grants {
            xml.open("Grant");
            match &grant.grantee {
                Grantee::User(id) => {
                    xml.raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">");
                    xml.element("ID", id);
                    if id == owner {
                        xml.element("DisplayName", owner_name);
                    }
                }
                Grantee::Group(uri) => {
                    xml.raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">");
                    xml.element("URI", uri);
                }
            }
            xml.close("Grantee");
            xml.element("Permission", grant.permission.as_str());
            xml.close("Grant");
        }
        xml.close("AccessControlList");
        xml.close("AccessControlPolicy");
        xml.finish()
    }
}

/// Grants from `x-amz-grant-*` headers: `id="..."`, `uri="..."` lists.
pub(crate) fn grants_from_headers(
    headers: &[(String, String)],
    owner: &str,
) -> Result<Option<Acl>, S3Error> {
    let names = [
        ("x-amz-grant-read", Permission::Read),
        ("x-amz-grant-write", Permission::Write),
        ("x-amz-grant-read-acp", Permission::ReadAcp),
        ("x-amz-grant-write-acp", Permission::WriteAcp),
        ("x-amz-grant-full-control", Permission::FullControl),
    ];
    let mut grants = vec![Grant {
        grantee: Grantee::User(owner.to_string()),
        permission: Permission::FullControl,
    }];
    let mut any = false;
    for (name, value) in headers {
        let Some((_, permission)) = names.iter().find(|(n, _)| n == name) else {
            continue;
        };
        any = true;
        for item in value.split(',') {
            let (kind, target) = item
                .trim()
                .split_once('=')
                .ok_or_else(|| invalid_grant(name))?;
            let target = target.trim().trim_matches('"').to_string();
            let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                "id" => Grantee::User(target),
                "uri" => Grantee::Group(target),
                "emailaddress" => {
                    return Err(S3Error::with_message(
                        ErrorCode::NotImplemented,
                        "Grants by email address are not supported by this server.",
                    ))
                }
                _ => return Err(invalid_grant(name)),
            };
            grants.push(Grant {
                grantee,
                permission: *permission,
            });
        }
    }
    Ok(any.then_some(Acl { grants }))
}

fn invalid_grant(name: &str) -> S3Error {
    S3Error::with_message(ErrorCode::InvalidArgument, "Invalid grant header")
        .field("ArgumentName", name.to_string())
}

/// The ACL an AccessControlPolicy document describes.
pub(crate) fn acl_from_xml(body: &[u8]) -> Result<Acl, S3Error> {
    let root = parse_document(body)?;
    if root.name != "AccessControlPolicy" {
        return Err(S3Error::new(ErrorCode::MalformedACLError));
    }
    let list = root
        .child("AccessControlList")
        .ok_or_else(|| S3Error::new(ErrorCode::MalformedACLError))?;
    let mut grants = Vec::new();
    for grant in list.children_named("Grant") {
        let grantee = grant
            .child("Grantee")
            .ok_or_else(|| S3Error::new(ErrorCode::MalformedACLError))?;
        let grantee = if let Some(id) = grantee.child_text("ID") {
            Grantee::User(id.to_string())
        } else if let Some(uri) = grantee.child_text("URI") {
            Grantee::Group(uri.to_string())
        } else {
            return Err(S3Error::new(ErrorCode::MalformedACLError));
        };
        let permission = grant
            .child_text("Permission")
            .and_then(Permission::parse)
            .ok_or_else(|| S3Error::new(ErrorCode::MalformedACLError))?;
        grants.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(Acl { grants })
}

/// The ACL a request asks for: canned (`x-amz-acl`), grant headers, or neither
/// (private). Both at once is `InvalidRequest`, as S3 answers it.
pub(crate) fn acl_from_request(
    headers: &[(String, String)],
    owner: &str,
    bucket_owner: &str,
) -> Result<Acl, S3Error> {
    let canned = headers
        .iter()
        .find(|(n, _)| n == "x-amz-acl")
        .map(|(_, v)| v.as_str());
    let granted = grants_from_headers(headers, owner)?;
    match (canned, granted) {
        (Some(_), Some(_)) => Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed",
        )),
        (Some(name), None) => Acl::canned(name, owner, bucket_owner),
        (None, Some(acl)) => Ok(acl),
        (None, None) => Acl::canned("private", owner, bucket_owner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_and_checks() {
        let acl = Acl::canned("public-read", "owner", "owner").unwrap();
        assert!(acl.allows("owner", Some("owner"), Permission::WriteAcp));
        assert!(acl.allows("owner", None, Permission::Read));
        assert!(!acl.allows("owner", None, Permission::Write));
        let acl = Acl::canned("authenticated-read", "owner", "owner").unwrap();
        assert!(acl.allows("owner", Some("someone"), Permission::Read));
        assert!(!acl.allows("owner", None, Permission::Read));
        let private = Acl::canned("private", "owner", "owner").unwrap();
        assert!(!private.allows("owner", Some("someone"), Permission::Read));
        assert!(Acl::canned("nope", "o", "o").is_err());
    }

    #[test]
    fn stored_form_round_trips() {
        let headers = vec![
            (
                "x-amz-grant-read".to_string(),
                "id=\"abc\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"".to_string(),
            ),
            ("x-amz-grant-write-acp".to_string(), "id=def".to_string()),
        ];
        let acl = acl_from_request(&headers, "owner", "owner").unwrap();
        assert_eq!(acl.grants.len(), 4);
        assert_eq!(Acl::from_json(&acl.to_json(), "owner"), acl);
        let private = Acl::canned("private", "o\"w\\n", "o").unwrap();
        assert_eq!(
            private.to_json(),
            "{\"grants\":[[\"U:own\",\"FULL_CONTROL\"]]}"
        );
        assert!(acl.allows("owner", Some("def"), Permission::WriteAcp));
        assert!(acl.allows("owner", None, Permission::Read));
        let both = vec![
            ("x-amz-acl".to_string(), "private".to_string()),
            headers[0].clone(),
        ];
        assert_eq!(
            acl_from_request(&both, "o", "o").unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            Acl::from_json("{\"canned\":\"private\"}", "o").grants.len(),
            1
        );
    }

    #[test]
    fn policy_documents() {
        let acl = Acl::canned("public-read", "owner", "owner").unwrap();
        let xml = acl.to_xml("owner", "Owner Name");
        assert_eq!(acl_from_xml(&xml).unwrap(), acl);
        assert_eq!(
            acl_from_xml(b"<Other/>").unwrap_err().code,
            ErrorCode::MalformedACLError
        );
    }
}

/// The new ACL of a Put*Acl request: an AccessControlPolicy body, or canned /
/// grant headers; a body together with headers is `InvalidRequest`.
fn requested_acl(
    headers: &[(String, String)],
    body: &[u8],
    owner: &str,
    bucket_owner: &str,
) -> Result<Acl, S3Error> {
    let has_headers = headers
        .iter()
        .any(|(n, _)| n == "x-amz-acl" || n.starts_with("x-amz-grant-"));
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    match (has_headers, has_body) {
        (true, true) => Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "Specifying both an ACL document and ACL headers is not allowed",
        )),
        (false, true) => acl_from_xml(body),
        _ => acl_from_request(headers, owner, bucket_owner),
    }
}

mod handlers {
    use super::*;
    use crate::error::meta_error;
    use crate::http::ResponseHead;
    use crate::limits;
    use crate::meta::{BucketRow, ObjectRow, VersionSel};
    use crate::s3::context::{reply, RequestContext, S3Response};

    fn policy_response(ctx: &RequestContext<'_, '_>, acl: &Acl, owner: &str) -> S3Response {
        let name = if Some(owner) == ctx.requester() {
            ctx.principal.display_name().to_string()
        } else {
            owner.to_string()
        };
        let mut head = ResponseHead::new(200);
        head.header("Content-Type", "application/xml");
        S3Response::new(head, crate::http::Body::Bytes(acl.to_xml(owner, &name)))
    }

    pub(crate) fn get_bucket_acl(ctx: &RequestContext<'_, '_>, bucket: &BucketRow) -> S3Response {
        let acl = Acl::from_json(&bucket.acl, &bucket.owner_id);
        policy_response(ctx, &acl, &bucket.owner_id)
    }

    pub(crate) async fn put_bucket_acl(
        ctx: &mut RequestContext<'_, '_>,
        bucket: &BucketRow,
    ) -> Result<S3Response, S3Error> {
        let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
        let acl = requested_acl(&ctx.head.headers, &body, &bucket.owner_id, &bucket.owner_id)?;
        ctx.state
            .meta
            .set_bucket_acl(&bucket.name, acl.to_json())
            .await
            .map_err(|e| meta_error(e, &bucket.name, None))?;
        Ok(reply(ResponseHead::new(200)))
    }

    pub(crate) fn get_object_acl(ctx: &RequestContext<'_, '_>, row: &ObjectRow) -> S3Response {
        let acl = Acl::from_json(&row.acl, &row.owner_id);
        policy_response(ctx, &acl, &row.owner_id)
    }

    pub(crate) async fn put_object_acl(
        ctx: &mut RequestContext<'_, '_>,
        bucket: &BucketRow,
        row: &ObjectRow,
        version: Option<VersionSel>,
    ) -> Result<S3Response, S3Error> {
        let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
        let acl = requested_acl(&ctx.head.headers, &body, &row.owner_id, &bucket.owner_id)?;
        ctx.state
            .meta
            .set_object_acl(&bucket.name, &row.key, version, acl.to_json())
            .await
            .map_err(|e| meta_error(e, &bucket.name, Some(&row.key)))?;
        Ok(reply(ResponseHead::new(200)))
    }
}

pub(crate) use handlers::{get_bucket_acl, get_object_acl, put_bucket_acl, put_object_acl};
