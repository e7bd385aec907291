//! The authentication stage of the request pipeline: who sent this request. It runs
//! once per request, before routing and before any handler, and settles the
//! signature completely: what it leaves for later is only holding the body to the
//! hash or chunk signatures the verified head declared (`PayloadCheck`). A handler
//! receives its result, never a verification still pending.

use std::rc::Rc;

use crate::auth::{self, ParsedAuth, PayloadCheck, RequestParts};
use crate::clock;
use crate::core_state::CoreState;
use crate::error::{ErrorCode, S3Error};
use crate::http::RequestHead;
use crate::meta::CredentialRow;

/// Who a request acts as.
pub(crate) enum Principal {
    /// No Authorization header and no presigned query: allowed exactly where an ACL
    /// grants AllUsers.
    Anonymous,
    /// A user whose signature over the request was verified.
    User(Rc<CredentialRow>),
}

impl Principal {
    /// The requester's canonical id, `None` when anonymous.
    pub(crate) fn requester(&self) -> Option<&str> {
        match self {
            Principal::Anonymous => None,
            Principal::User(user) => Some(&user.owner_id),
        }
    }

    /// The canonical id new resources are owned by (empty when anonymous).
    pub(crate) fn owner_id(&self) -> &str {
        self.requester().unwrap_or_default()
    }

    pub(crate) fn display_name(&self) -> &str {
        match self {
            Principal::Anonymous => "",
            Principal::User(user) => &user.display_name,
        }
    }
}

/// The outcome of authentication: the principal, and what the body must still match.
pub(crate) struct Authenticated {
    pub principal: Principal,
    pub payload: PayloadCheck,
}

impl Authenticated {
    pub(crate) fn anonymous() -> Authenticated {
        Authenticated {
            principal: Principal::Anonymous,
            payload: PayloadCheck::Unsigned,
        }
    }
}

/// Authenticates a request from its head alone. A signed request comes back with its
/// signature verified, every `x-amz-*` header it carries covered by that signature,
/// and a presigned URL's `x-amz-*` query parameters added to `head` as the headers they
/// stand for.
pub(crate) async fn authenticate(
    state: &CoreState,
    head: &mut RequestHead,
    has_body: bool,
    host_bucket: Option<&str>,
) -> Result<Authenticated, S3Error> {
    let parts = RequestParts {
        method: &head.method,
        raw_path: &head.path,
        raw_query: &head.query,
        headers: &head.headers,
        has_body,
        host_bucket,
    };
    let parsed = auth::parse_auth(&parts)?;
    let Some(access_key) = parsed.access_key() else {
        return Ok(Authenticated::anonymous());
    };
    let user = state.credential(access_key).await?.ok_or_else(|| {
        S3Error::new(ErrorCode::InvalidAccessKeyId).field("AWSAccessKeyId", access_key)
    })?;
    let payload = auth::verify(
        &parsed,
        &parts,
        &user.secret_key,
        &state.config.region,
        clock::now_unix(),
        &mut state.signing_keys.borrow_mut(),
    )?;
    if matches!(parsed, ParsedAuth::Presigned(_)) {
        for (name, value) in parsed.into_query_headers() {
            if head.header(&name).is_none() {
                head.headers.push((name, value));
            }
        }
    }
    Ok(Authenticated {
        principal: Principal::User(user),
        payload,
    })
}
