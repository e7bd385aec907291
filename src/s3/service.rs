//! The request pipeline, in one visible order: resolve bucket and key, authenticate
//! (`s3::authenticate`), route to an operation (`s3::route`), parse its inputs
//! (`s3::operation`), authorize (`s3::authorize`), run its handler, answer errors as
//! S3 XML. It is the daemon's `http::Service`: the http layer reads the request
//! and writes what this returns. The operations endpoints (`/health`, `/metrics`,
//! ...) are answered first, for unsigned GETs of exactly their paths.

use std::rc::Rc;

use crate::core_state::CoreState;
use crate::error::{ErrorCode, S3Error};
use crate::http::{
    Body, BodyReader, Exchange, Labels, RequestHead, Response, ResponseHead, Service,
};
use crate::ops::endpoints;
use crate::ops::lifecycle::FigureGuard;
use crate::ops::metrics::RequestRecord;
use crate::s3::authenticate;
use crate::s3::authorize::{authorize, Granted};
use crate::s3::context::{reply, RequestContext, S3Response};
use crate::s3::object_stream::ObjectStream;
use crate::s3::operation::{version_sel, Operation};
use crate::s3::route::{self, Query, Target};
use crate::s3::{
    acl, attributes, bucket, copy, cors, list, multipart, object, object_lock, versioning, xml,
};

/// The daemon's front: one per core.
pub(crate) struct Front {
    pub state: Rc<CoreState>,
}

impl Front {
    /// The answer to a connection over the cap.
    pub(crate) fn slow_down(&self) -> S3Response {
        let error = S3Error::with_message(
            ErrorCode::SlowDown,
            "The server is at its connection limit; retry shortly.",
        );
        let request_id = self.state.next_request_id();
        let mut response = error_response(&self.state, "", false, &error, &request_id);
        finish_head(&self.state, &mut response, request_id);
        response
    }
}

impl Service for Front {
    type Stream = ObjectStream;
    type InFlight = FigureGuard;

    async fn call(&self, head: &mut RequestHead, body: &mut BodyReader<'_>) -> S3Response {
        let state = &*self.state;
        let request_id = state.next_request_id();
        let mut response = match endpoints::endpoint_for(head) {
            Some(endpoint) => endpoints::serve(state, head, endpoint).await,
            None => {
                let mut labels = Labels {
                    path: "/",
                    ..Labels::default()
                };
                let result = s3_request(state, head, body, &mut labels).await;
                let mut response = result.unwrap_or_else(|error| {
                    log::debug!("{} {} -> {error}", head.method, head.path);
                    let is_head = head.method == "HEAD";
                    error_response(state, &head.path, is_head, &error, &request_id)
                });
                // The response stage: CORS headers for an allowed Origin, on any answer.
                cors::decorate(state, head, &mut response).await;
                response.labels = labels;
                response
            }
        };
        finish_head(state, &mut response, request_id);
        response
    }

    fn reject(&self, error: &S3Error) -> S3Response {
        let request_id = self.state.next_request_id();
        let mut response = error_response(&self.state, "", false, error, &request_id);
        response.labels.path = "/";
        finish_head(&self.state, &mut response, request_id);
        response
    }

    fn in_flight(&self) -> FigureGuard {
        self.state.lifecycle.request(self.state.core_id())
    }

    fn draining(&self) -> bool {
        self.state.lifecycle.is_draining()
    }

    fn idle(&self) -> &crate::http::IdleSet {
        &self.state.idle
    }

    fn buffers(&self) -> &Rc<crate::http::ConnectionBuffers> {
        &self.state.buffers
    }

    fn finished(&self, exchange: &Exchange<'_>) {
        let labels = exchange.labels;
        if labels.quiet {
            return;
        }
        let record = RequestRecord {
            method: method_label(exchange.method),
            path: labels.path,
            status: exchange.status,
            operation: labels.operation,
            bytes_in: exchange.bytes_in,
            bytes_out: exchange.bytes_out,
            duration: exchange.duration,
        };
        self.state.metrics.borrow_mut().record(&record);
        log::info!(
            target: crate::ops::logging::ACCESS_TARGET,
            method = record.method,
            path = record.path,
            status = record.status,
            bytes_in = record.bytes_in,
            bytes_out = record.bytes_out,
            // Whole microseconds over 1000 print as a short exact decimal (2.037, not 2.0369999).
            duration_ms = record.duration.as_micros() as f64 / 1000.0,
            request_id = labels.request_id.as_str(),
            operation = record.operation.unwrap_or("-");
            "request"
        );
    }
}

/// Adds the headers every response carries and the request id it is logged under.
fn finish_head(state: &CoreState, response: &mut S3Response, request_id: String) {
    let head = &mut response.head;
    head.header("x-amz-request-id", &request_id);
    head.header("x-amz-id-2", state.host_id());
    state.with_http_date(|date| head.header("Date", date));
    head.header("Server", "BleepStore");
    response.labels.request_id = request_id;
}

/// An error as S3 answers it: the status, the error's headers, and an XML document
/// (none for HEAD or 304). An internal error is logged here, with its request id.
fn error_response(
    state: &CoreState,
    resource: &str,
    is_head: bool,
    error: &S3Error,
    request_id: &str,
) -> S3Response {
    if error.code == ErrorCode::InternalError {
        log::error!(
            "request {request_id}: internal error: {}",
            error.cause.as_deref().unwrap_or("(no cause recorded)")
        );
    }
    let mut head = ResponseHead::new(error.status());
    for (name, value) in &error.headers {
        head.header(name, value);
    }
    if is_head || error.status() == 304 {
        return reply(head);
    }
    head.header("Content-Type", "application/xml");
    let document = xml::error_document(error, resource, request_id, state.host_id());
    Response::new(head, Body::Bytes(document))
}

/// The method as a label from a fixed set, so clients cannot mint label values.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// The path template of an S3 request: never a bucket or key, which are unbounded.
fn path_template(target: &Target) -> &'static str {
    match (&target.bucket, &target.key) {
        (None, _) => "/",
        (Some(_), None) => "/{bucket}",
        (Some(_), Some(_)) => "/{bucket}/{key}",
    }
}

/// The stages, in order. Routing comes after authentication so that nothing of a
/// request is interpreted (not even the headers that pick an operation) before its
/// signature holds, and a presigned URL's signed query headers are in place.
async fn s3_request(
    state: &CoreState,
    head: &mut RequestHead,
    body: &mut BodyReader<'_>,
    labels: &mut Labels,
) -> Result<S3Response, S3Error> {
    let target = route::resolve_target(
        head.header("host"),
        &head.path,
        state.config.domain.as_deref(),
    )?;
    labels.path = path_template(&target);
    // A CORS preflight is answered from the bucket's rules without authentication
    // (browsers send it without credentials); it reads the rules and acts on nothing.
    if head.method == "OPTIONS" {
        labels.operation = Some("PreflightCors");
        return cors::preflight(state, head, &target).await;
    }
    let host_bucket = target.bucket.as_deref().filter(|_| target.virtual_host);
    let auth = authenticate::authenticate(state, head, body.has_body(), host_bucket).await?;
    let query = Query::parse(&head.query)?;
    let kind = route::route(
        &head.method,
        &target,
        &query,
        head.header("x-amz-copy-source").is_some(),
    )?;
    labels.operation = Some(kind.name());
    let operation = Operation::parse(kind, &target, &query, head)?;
    let granted = authorize(state, &auth.principal, operation.access()).await?;
    let mut ctx = RequestContext {
        state,
        head,
        body,
        payload: auth.payload,
        principal: auth.principal,
    };
    dispatch(&mut ctx, operation, granted).await
}

async fn dispatch(
    ctx: &mut RequestContext<'_, '_>,
    operation: Operation,
    granted: Granted<'_>,
) -> Result<S3Response, S3Error> {
    match operation {
        Operation::ListBuckets => bucket::list_buckets(ctx).await,
        Operation::CreateBucket(name) => bucket::create_bucket(ctx, name).await,
        Operation::DeleteBucket(_) => bucket::delete_bucket(ctx, granted.bucket()?).await,
        Operation::HeadBucket(_) => Ok(bucket::head_bucket(granted.bucket()?)),
        Operation::GetBucketLocation(_) => Ok(bucket::get_bucket_location(granted.bucket()?)),
        Operation::GetBucketVersioning(_) => {
            Ok(versioning::get_bucket_versioning(granted.bucket()?))
        }
        Operation::PutBucketVersioning(_) => {
            versioning::put_bucket_versioning(ctx, granted.bucket()?).await
        }
        Operation::GetBucketCors(_) => cors::get_bucket_cors(granted.bucket()?),
        Operation::PutBucketCors(_) => cors::put_bucket_cors(ctx, granted.bucket()?).await,
        Operation::DeleteBucketCors(_) => cors::delete_bucket_cors(ctx, granted.bucket()?).await,
        Operation::GetObjectLockConfiguration(_) => {
            object_lock::get_object_lock_configuration(granted.bucket()?)
        }
        Operation::PutObjectLockConfiguration(_) => {
            object_lock::put_object_lock_configuration(ctx, granted.bucket()?).await
        }
        Operation::GetObjectRetention(..) => {
            object_lock::get_object_retention(granted.bucket()?, granted.object()?)
        }
        Operation::GetObjectLegalHold(..) => {
            object_lock::get_object_legal_hold(granted.bucket()?, granted.object()?)
        }
        Operation::PutObjectRetention(_, version) => {
            let version = version_sel(version.as_ref())?;
            let (bucket, row) = (granted.bucket()?, granted.object()?);
            object_lock::put_object_retention(ctx, bucket, row, version).await
        }
        Operation::PutObjectLegalHold(_, version) => {
            let version = version_sel(version.as_ref())?;
            let (bucket, row) = (granted.bucket()?, granted.object()?);
            object_lock::put_object_legal_hold(ctx, bucket, row, version).await
        }
        Operation::GetBucketAcl(_) => Ok(acl::get_bucket_acl(ctx, granted.bucket()?)),
        Operation::PutBucketAcl(_) => acl::put_bucket_acl(ctx, granted.bucket()?).await,
        Operation::ListObjects { params, marker, .. } => {
            list::list_objects(ctx, granted.bucket()?, params, marker).await
        }
        Operation::ListObjectsV2 { params, start, .. } => {
            list::list_objects_v2(ctx, granted.bucket()?, params, start).await
        }
        Operation::ListObjectVersions {
            params,
            key_marker,
            version_marker,
            version_after,
            ..
        } => {
            let bucket = granted.bucket()?;
            list::list_object_versions(
                ctx,
                bucket,
                params,
                key_marker,
                version_marker,
                version_after,
            )
            .await
        }
        Operation::ListMultipartUploads(query) => {
            multipart::list_multipart_uploads(ctx, query).await
        }
        Operation::DeleteObjects(_) => object::delete_objects(ctx, granted.bucket()?).await,
        Operation::PutObject { object, condition } => {
            object::put_object(ctx, granted.bucket()?, object, condition).await
        }
        Operation::GetObject(input) => object::get_object(ctx, input, granted).await,
        Operation::HeadObject(input) => object::head_object(input, &granted),
        Operation::DeleteObject {
            object,
            version,
            if_match,
        } => {
            let version = version_sel(version.as_ref())?;
            object::delete_object(ctx, granted.bucket()?, object, version, if_match).await
        }
        Operation::CopyObject(input) => copy::copy_object(ctx, input, granted).await,
        Operation::GetObjectAcl(..) => Ok(acl::get_object_acl(ctx, granted.object()?)),
        Operation::PutObjectAcl(_, version) => {
            let version = version_sel(version.as_ref())?;
            acl::put_object_acl(ctx, granted.bucket()?, granted.object()?, version).await
        }
        Operation::GetObjectAttributes(input) => {
            Ok(attributes::get_object_attributes(input, granted.object()?))
        }
        Operation::CreateMultipartUpload(object) => {
            multipart::create_multipart_upload(ctx, granted.bucket()?, object).await
        }
        Operation::UploadPart(part) => multipart::upload_part(ctx, granted.bucket()?, part).await,
        Operation::UploadPartCopy(input) => multipart::upload_part_copy(ctx, input, granted).await,
        Operation::CompleteMultipartUpload {
            object,
            upload_id,
            condition,
        } => {
            multipart::complete_multipart_upload(
                ctx,
                granted.bucket()?,
                object,
                upload_id,
                condition,
            )
            .await
        }
        Operation::AbortMultipartUpload { object, upload_id } => {
            multipart::abort_multipart_upload(ctx, object, upload_id).await
        }
        Operation::ListParts(input) => multipart::list_parts(ctx, input).await,
        Operation::NotImplemented(name) => Err(S3Error::with_message(
            ErrorCode::NotImplemented,
            format!("{name} is not implemented by this server."),
        )),
    }
}
