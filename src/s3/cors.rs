//! CORS, as S3 defines it: a bucket's rules (Put/Get/DeleteBucketCors), the OPTIONS
//! preflight answered from the first matching rule without authentication (it reads
//! the rules and changes nothing), and the `Access-Control-*` headers the response
//! stage adds to every answer, errors included, of a request that carries an `Origin`
//! a rule allows.

use serde::{Deserialize, Serialize};

use crate::core_state::CoreState;
use crate::error::{meta_error, ErrorCode, S3Error};
use crate::http::{RequestHead, ResponseHead};
use crate::limits;
use crate::meta::BucketRow;
use crate::s3::config_xml::parse_config;
use crate::s3::context::{reply, xml_reply, RequestContext, S3Response};
use crate::s3::route::Target;
use crate::s3::xml::XmlWriter;

/// The methods a CORS rule may allow.
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// One `<CORSRule>`, stored as JSON in the bucket's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub expose: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
}

/// The rules of a CORSConfiguration document, checked as S3 checks them.
pub(crate) fn requested_rules(body: &[u8]) -> Result<Vec<CorsRule>, S3Error> {
    let root = parse_config(body, "CORSConfiguration")?;
    let malformed = || S3Error::new(ErrorCode::MalformedXML);
    let invalid = |message: String| S3Error::with_message(ErrorCode::InvalidRequest, message);
    let mut rules = Vec::new();
    for element in root.children_named("CORSRule") {
        let texts = |name: &str| -> Vec<String> {
            element
                .children_named(name)
                .map(|c| c.text.trim().to_string())
                .collect()
        };
        let rule = CorsRule {
            id: element.child_text("ID").map(str::to_string),
            origins: texts("AllowedOrigin"),
            methods: texts("AllowedMethod"),
            headers: texts("AllowedHeader"),
            expose: texts("ExposeHeader"),
            max_age: match element.child_text("MaxAgeSeconds") {
                None => None,
                Some(text) => Some(text.parse().map_err(|_| malformed())?),
            },
        };
        if rule.origins.is_empty() || rule.methods.is_empty() {
            return Err(malformed());
        }
        if let Some(method) = rule.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(invalid(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            )));
        }
        for (kind, values) in [
            ("AllowedOrigin", &rule.origins),
            ("AllowedHeader", &rule.headers),
        ] {
            if let Some(value) = values.iter().find(|v| v.matches('*').count() > 1) {
                return Err(invalid(format!(
                    "{kind} \"{value}\" can not have more than one wildcard."
                )));
            }
        }
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err(malformed());
    }
    if rules.len() > limits::CORS_RULES_MAX {
        return Err(invalid(format!(
            "The number of CORS rules should not exceed allowed limit of {} rules.",
            limits::CORS_RULES_MAX
        )));
    }
    Ok(rules)
}

/// The stored rules of a bucket (none when it has none, or they do not parse).
fn rules_of(bucket: &BucketRow) -> Vec<CorsRule> {
    bucket
        .cors
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Whether `text` matches `pattern`, which may hold one `*` standing for any run of
/// characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len() && text.starts_with(head) && text.ends_with(tail)
        }
    }
}

/// The first rule that allows `origin` to use `method` (and, for a preflight, every
/// header it asks for; header names match case-insensitively). Also returns whether
/// the origin matched by a lone `*` (answered `*`, not echoed).
fn matching<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<(&'a CorsRule, bool)> {
    rules.iter().find_map(|rule| {
        let origin_ok = rule.origins.iter().any(|o| wildcard(o, origin));
        let method_ok = rule.methods.iter().any(|m| m == method);
        let headers_ok = headers.iter().all(|h| {
            rule.headers
                .iter()
                .any(|allowed| wildcard(&allowed.to_ascii_lowercase(), h))
        });
        (origin_ok && method_ok && headers_ok)
            .then(|| (rule, rule.origins.iter().all(|o| o == "*")))
    })
}

/// The headers a matching rule gives an answer to `origin`.
fn allow(head: &mut ResponseHead, rule: &CorsRule, origin: &str, any_origin: bool) {
    if any_origin {
        head.header("Access-Control-Allow-Origin", "*");
    } else {
        head.header("Access-Control-Allow-Origin", origin);
        head.header("Access-Control-Allow-Credentials", "true");
    }
    head.header("Access-Control-Allow-Methods", rule.methods.join(", "));
    if !rule.expose.is_empty() {
        head.header("Access-Control-Expose-Headers", rule.expose.join(", "));
    }
    if let Some(max_age) = rule.max_age {
        head.header_decimal("Access-Control-Max-Age", u64::from(max_age));
    }
    head.header(
        "Vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}

/// The refusal of a preflight no rule allows.
fn forbidden(why: &str) -> S3Error {
    S3Error::with_message(ErrorCode::AccessForbidden, format!("CORSResponse: {why}"))
        .field("Method", "OPTIONS")
        .field("ResourceType", "OBJECT")
}

/// An OPTIONS preflight: answered from the bucket's first matching rule, before and
/// without authentication (a browser sends no credentials with it). It reads the
/// rules only; a bucket that does not exist is refused as one without rules, so a
/// preflight tells nobody which buckets exist.
pub(crate) async fn preflight(
    state: &CoreState,
    head: &RequestHead,
    target: &Target,
) -> Result<S3Response, S3Error> {
    let origin = head.header("origin").ok_or_else(|| {
        S3Error::with_message(
            ErrorCode::BadRequest,
            "Insufficient information. Origin request header needed.",
        )
    })?;
    let method = head
        .header("access-control-request-method")
        .ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::BadRequest,
                "Invalid Access-Control-Request-Method: null",
            )
        })?;
    let requested: Vec<String> = head
        .header("access-control-request-headers")
        .map(|list| {
            list.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let refused = "This CORS request is not allowed. This is usually because the evalution of \
                   Origin, request method / Access-Control-Request-Method or \
                   Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
    let Some(name) = target.bucket.as_deref() else {
        return Err(forbidden(refused));
    };
    let bucket = state
        .rows
        .bucket(&state.meta, name)
        .await
        .map_err(|e| meta_error(e, name, None))?;
    let rules = bucket.as_deref().map(rules_of).unwrap_or_default();
    let (rule, any_origin) =
        matching(&rules, origin, method, &requested).ok_or_else(|| forbidden(refused))?;
    let mut response = ResponseHead::new(200);
    allow(&mut response, rule, origin, any_origin);
    if !requested.is_empty() {
        response.header("Access-Control-Allow-Headers", requested.join(", "));
    }
    Ok(reply(response))
}

/// The response stage's CORS step: for a request with an `Origin` that one of the
/// bucket's rules allows for its method, the `Access-Control-*` headers, on whatever
/// the answer is (an error included).
pub(crate) async fn decorate(state: &CoreState, head: &RequestHead, response: &mut S3Response) {
    let Some(origin) = head.header("origin") else {
        return;
    };
    let Ok(target) = crate::s3::route::resolve_target(
        head.header("host"),
        &head.path,
        state.config.domain.as_deref(),
    ) else {
        return;
    };
    let Some(name) = target.bucket.as_deref() else {
        return;
    };
    let Ok(Some(bucket)) = state.rows.bucket(&state.meta, name).await else {
        return;
    };
    if bucket.cors.is_none() {
        return;
    }
    let rules = rules_of(&bucket);
    if let Some((rule, any_origin)) = matching(&rules, origin, &head.method, &[]) {
        allow(&mut response.head, rule, origin, any_origin);
    }
}

/// GetBucketCors.
pub(crate) fn get_bucket_cors(bucket: &BucketRow) -> Result<S3Response, S3Error> {
    if bucket.cors.is_none() {
        return Err(S3Error::new(ErrorCode::NoSuchCORSConfiguration)
            .field("BucketName", bucket.name.clone()));
    }
    let mut xml = XmlWriter::new();
    xml.root("CORSConfiguration");
    for rule in rules_of(bucket) {
        xml.open("CORSRule");
        xml.optional("ID", rule.id.as_deref());
        for (name, values) in [
            ("AllowedHeader", &rule.headers),
            ("AllowedMethod", &rule.methods),
            ("AllowedOrigin", &rule.origins),
            ("ExposeHeader", &rule.expose),
        ] {
            for value in values {
                xml.element(name, value);
            }
        }
        if let Some(max_age) = rule.max_age {
            xml.element("MaxAgeSeconds", &max_age.to_string());
        }
        xml.close("CORSRule");
    }
    xml.close("CORSConfiguration");
    Ok(xml_reply(xml))
}

/// PutBucketCors: replaces the bucket's rules.
pub(crate) async fn put_bucket_cors(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
) -> Result<S3Response, S3Error> {
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let rules = requested_rules(&body)?;
    let json = serde_json::to_string(&rules)
        .map_err(|e| S3Error::internal(format!("CORS rules as JSON: {e}")))?;
    set(ctx, bucket, Some(json), 200).await
}

/// DeleteBucketCors.
pub(crate) async fn delete_bucket_cors(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
) -> Result<S3Response, S3Error> {
    set(ctx, bucket, None, 204).await
}

async fn set(
    ctx: &RequestContext<'_, '_>,
    bucket: &BucketRow,
    cors: Option<String>,
    status: u16,
) -> Result<S3Response, S3Error> {
    ctx.state
        .meta
        .set_bucket_cors(&bucket.name, cors)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(reply(ResponseHead::new(status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CorsRule {
            id: None,
            origins: strings(origins),
            methods: strings(methods),
            headers: strings(headers),
            expose: Vec::new(),
            max_age: None,
        }
    }

    #[test]
    fn rules_match_as_s3_matches_them() {
        let rules = vec![
            rule(&["https://*.example.com"], &["GET"], &[]),
            rule(&["*"], &["PUT"], &["Content-*"]),
        ];
        let found = |origin: &str, method: &str, headers: &[&str]| {
            let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
            matching(&rules, origin, method, &headers).map(|(r, any)| (r.methods[0].clone(), any))
        };
        assert_eq!(
            found("https://a.example.com", "GET", &[]),
            Some(("GET".into(), false))
        );
        assert_eq!(found("https://example.com", "GET", &[]), None);
        assert_eq!(found("http://a.example.com", "GET", &[]), None);
        assert_eq!(
            found("http://x", "PUT", &["content-type"]),
            Some(("PUT".into(), true))
        );
        assert_eq!(found("http://x", "PUT", &["x-amz-meta-a"]), None);
        assert_eq!(found("http://x", "DELETE", &[]), None);
    }

    #[test]
    fn configurations_are_checked() {
        let doc = |inner: &str| format!("<CORSConfiguration>{inner}</CORSConfiguration>");
        let rules = requested_rules(
            doc("<CORSRule><ID>r</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
                 <AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>\
                 <MaxAgeSeconds>60</MaxAgeSeconds></CORSRule>")
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(rules[0].id.as_deref(), Some("r"));
        assert_eq!(
            (rules[0].expose.clone(), rules[0].max_age),
            (vec!["ETag".to_string()], Some(60))
        );
        let code = |inner: &str| requested_rules(doc(inner).as_bytes()).unwrap_err().code;
        assert_eq!(code(""), ErrorCode::MalformedXML);
        assert_eq!(
            code("<CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code("<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule>"),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code("<CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"),
            ErrorCode::InvalidRequest
        );
        let many = "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
            .repeat(limits::CORS_RULES_MAX + 1);
        assert_eq!(code(&many), ErrorCode::InvalidRequest);
    }
}
