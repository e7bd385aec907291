//! The request pipeline of one connection: read a head, resolve bucket and key,
//! authenticate, route, run the operation's handler, answer errors as S3 XML,
//! then make the connection ready for the next request (or close it). Handlers
//! receive the authentication stage's result (`RequestContext::principal`), never a
//! signature still to be checked.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Instant;

use monoio::net::TcpStream;

use crate::auth::PayloadCheck;
use crate::core_state::CoreState;
use crate::http::{Body, BodyKind, Connection, RequestHead, ResponseHead};
use crate::limits;
use crate::ops::endpoints;
use crate::ops::metrics::RequestRecord;
use crate::s3::authenticate::{self, Authenticated, Principal};
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::route::{self, Operation, Query, Target};
use crate::s3::{acl, attributes, bucket, copy, list, multipart, object, xml};

/// Serves one accepted connection until it closes (or, once the process
/// drains, until its current request is answered).
pub async fn serve_connection(state: Rc<CoreState>, stream: TcpStream) {
    let _open = state.lifecycle.connection(state.core_id());
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::new(stream);
    loop {
        match conn.read_head().await {
            Ok(Some(head)) => {
                let _in_flight = state.lifecycle.request(state.core_id());
                let keep = match endpoints::endpoint_for(&head) {
                    Some(endpoint) => serve_endpoint(&state, &mut conn, head, endpoint).await,
                    None => handle_request(&state, &mut conn, head).await,
                };
                if !keep || state.lifecycle.is_draining() {
                    break;
                }
            }
            Ok(None) => return,
            Err(error) => {
                // The head could not be parsed: answer, then close, since the
                // stream position of the next request is unknown.
                let request_id = state.next_request_id();
                let mut response = ResponseHead::new(error.status());
                add_common_headers(&state, &mut response, &request_id);
                let body = xml::error_document(&error, "", &request_id, state.host_id());
                let mut out = Vec::with_capacity(512 + body.len());
                response.header("Content-Type", "application/xml".to_string());
                response.encode(Some(body.len() as u64), false, &mut out);
                out.extend_from_slice(&body);
                let _ = conn.write_all(out).await;
                break;
            }
        }
    }
    // We end this connection, maybe with input unread (a refused body, a bad head).
    conn.linger_close(limits::DRAIN_BYTES_MAX as usize, LINGER_TIMEOUT)
        .await;
}

const LINGER_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(limits::LINGER_MILLIS);

/// Answers a connection over the cap with 503 SlowDown and closes it.
pub async fn refuse_connection(state: Rc<CoreState>, stream: TcpStream) {
    let mut conn = Connection::new(stream);
    let request_id = state.next_request_id();
    let error = S3Error::with_message(
        ErrorCode::SlowDown,
        "The server is at its connection limit; retry shortly.",
    );
    let mut response = ResponseHead::new(error.status());
    add_common_headers(&state, &mut response, &request_id);
    response.header("Content-Type", "application/xml".to_string());
    let body = xml::error_document(&error, "", &request_id, state.host_id());
    let mut out = Vec::with_capacity(512 + body.len());
    response.encode(Some(body.len() as u64), false, &mut out);
    out.extend_from_slice(&body);
    let _ = conn.write_all(out).await;
    conn.linger_close(64 * 1024, LINGER_TIMEOUT).await;
    log::debug!("connection refused: core {} at its cap", state.core_id());
}

/// Serves an operations endpoint; returns whether the connection can carry another request.
async fn serve_endpoint(
    state: &CoreState,
    conn: &mut Connection,
    head: RequestHead,
    endpoint: endpoints::Endpoint,
) -> bool {
    let started = Instant::now();
    let request_id = state.next_request_id();
    // A body on these GETs would be left in the stream: answer, then close.
    let bodiless = matches!(head.body_kind(), Ok(BodyKind::Empty));
    let (status, bytes_out, keep) = endpoints::serve(
        state,
        conn,
        &head,
        endpoint,
        &request_id,
        head.keep_alive() && bodiless,
    )
    .await;
    if !endpoint.is_quiet() {
        finish_request(
            state,
            &RequestRecord {
                method: method_label(&head.method),
                path: endpoint.path(),
                status,
                operation: None,
                bytes_in: 0,
                bytes_out,
                duration: started.elapsed(),
            },
            &request_id,
        );
    }
    keep
}

/// Counts a finished request in this core's metrics and writes its access-log line.
fn finish_request(state: &CoreState, record: &RequestRecord, request_id: &str) {
    state.metrics.borrow_mut().record(record);
    log::info!(
        target: crate::ops::logging::ACCESS_TARGET,
        method = record.method,
        path = record.path,
        status = record.status,
        bytes_in = record.bytes_in,
        bytes_out = record.bytes_out,
        // Whole microseconds over 1000 print as a short exact decimal (2.037, not 2.0369999).
        duration_ms = record.duration.as_micros() as f64 / 1000.0,
        request_id = request_id,
        operation = record.operation.unwrap_or("-");
        "request"
    );
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

/// Everything a handler needs about the request it serves.
pub struct RequestContext<'a> {
    pub state: &'a CoreState,
    pub conn: &'a mut Connection,
    pub head: &'a RequestHead,
    pub query: Query,
    pub target: Target,
    pub body: Body,
    /// What the verified head still requires of the body.
    pub payload: PayloadCheck,
    /// Who the request acts as, settled by the authentication stage.
    pub principal: Principal,
    pub request_id: String,
    /// Set once the status line is on the wire: an error after that can only close.
    pub response_started: bool,
    /// Status of the response sent (0 until one is).
    pub status: u16,
    pub keep_alive: bool,
    continue_sent: bool,
}

impl RequestContext<'_> {
    pub fn bucket(&self) -> &str {
        self.target.bucket.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> &str {
        self.target.key.as_deref().unwrap_or_default()
    }

    /// The requester's canonical id, `None` for an anonymous request.
    pub fn requester(&self) -> Option<&str> {
        self.principal.requester()
    }

    pub fn is_head(&self) -> bool {
        self.head.method == "HEAD"
    }

    /// Tells a client waiting on `Expect: 100-continue` to send its body. Handlers call
    /// this only after every check that can refuse the request without its body.
    /// A 100 goes out even for an empty body: botocore, having sent `Expect`, takes
    /// any other first answer as the final one and keeps that status for the rest of
    /// the connection's life.
    pub async fn accept_body(&mut self) -> Result<(), S3Error> {
        if self.head.expects_continue() && !self.continue_sent {
            self.continue_sent = true;
            self.conn
                .send_continue()
                .await
                .map_err(|e| S3Error::internal(format!("write 100: {e}")))?;
        }
        Ok(())
    }

    /// Reads the whole body into memory, for the small XML bodies of bucket operations,
    /// and verifies it against the signed payload hash and any digest headers.
    pub async fn read_small_body(&mut self, max: usize) -> Result<Vec<u8>, S3Error> {
        self.read_xml_body(max, true).await
    }

    /// As `read_small_body`, for a body the `x-amz-checksum-*` headers do not describe.
    pub async fn read_completion_body(&mut self, max: usize) -> Result<Vec<u8>, S3Error> {
        self.read_xml_body(max, false).await
    }

    async fn read_xml_body(&mut self, max: usize, checksums: bool) -> Result<Vec<u8>, S3Error> {
        self.accept_body().await?;
        let mut out = Vec::new();
        loop {
            let room = max + 1 - out.len();
            let n = self
                .conn
                .read_body(&mut self.body, &mut out, room.min(64 * 1024))
                .await?;
            if n == 0 {
                crate::s3::payload::verify_small_body(self.head, &self.payload, &out, checksums)?;
                return Ok(out);
            }
            if out.len() > max {
                return Err(S3Error::with_message(
                    ErrorCode::MalformedXML,
                    "The XML body is too large.",
                ));
            }
        }
    }

    /// A response head with the headers every S3 response carries.
    pub fn response(&self, status: u16) -> ResponseHead {
        let mut response = ResponseHead::new(status);
        add_common_headers(self.state, &mut response, &self.request_id);
        response
    }

    /// Sends a complete response with an in-memory body.
    pub async fn send(&mut self, response: ResponseHead, body: &[u8]) -> Result<(), S3Error> {
        let mut out = Vec::with_capacity(512 + body.len());
        let length = if response.status() == 204 || response.status() == 304 {
            None
        } else {
            Some(body.len() as u64)
        };
        self.start_response(response.status());
        response.encode(length, self.keep_alive, &mut out);
        if !self.is_head() {
            out.extend_from_slice(body);
        }
        self.write(out).await
    }

    /// Sends a response head whose body the caller streams with `write`.
    pub async fn send_head(
        &mut self,
        response: ResponseHead,
        length: u64,
        out: Vec<u8>,
    ) -> Result<Vec<u8>, S3Error> {
        let mut out = out;
        out.clear();
        self.start_response(response.status());
        response.encode(Some(length), self.keep_alive, &mut out);
        self.response_started = true;
        Ok(out)
    }

    /// Records the status of the response about to be encoded. A client that sent
    /// `Expect: 100-continue` and got no 100 may still be about to send its body (or,
    /// like botocore, may mistake this answer's state for the next one's), so such a
    /// connection closes after this response.
    pub fn start_response(&mut self, status: u16) {
        self.status = status;
        if self.head.expects_continue() && !self.continue_sent {
            self.keep_alive = false;
        }
    }

    /// Writes bytes of the response.
    pub async fn write(&mut self, out: Vec<u8>) -> Result<(), S3Error> {
        self.response_started = true;
        let (result, _) = self.conn.write_all(out).await;
        result.map_err(|e| {
            self.keep_alive = false;
            log::debug!("client went away while we answered: {e}");
            S3Error::new(ErrorCode::InternalError)
        })
    }

    async fn send_error(&mut self, error: &S3Error) {
        let mut response = self.response(error.status());
        for (name, value) in &error.headers {
            response.header(*name, value.clone());
        }
        let body = if self.is_head() || error.status() == 304 {
            Vec::new()
        } else {
            response.header("Content-Type", "application/xml".to_string());
            let resource = self.head.path.as_str();
            xml::error_document(error, resource, &self.request_id, self.state.host_id())
        };
        let _ = self.send(response, &body).await;
    }
}

fn add_common_headers(state: &CoreState, response: &mut ResponseHead, request_id: &str) {
    response.header("x-amz-request-id", request_id.to_string());
    response.header("x-amz-id-2", state.host_id().to_string());
    response.header("Date", state.http_date());
    response.header(Cow::Borrowed("Server"), "BleepStore".to_string());
}

/// Serves one request; returns whether the connection can carry another.
async fn handle_request(state: &CoreState, conn: &mut Connection, mut head: RequestHead) -> bool {
    let started = Instant::now();
    let written_before = conn.bytes_written();
    let request_id = state.next_request_id();
    let keep_alive = head.keep_alive() && !state.lifecycle.is_draining();
    let body_kind = head.body_kind();
    // A request whose body framing is unreadable leaves the stream position unknown.
    let framing_ok = body_kind.is_ok();
    let prepared = match &body_kind {
        Ok(kind) => prepare(state, &mut head, !matches!(kind, BodyKind::Empty)).await,
        Err(error) => Err(error.clone()),
    };
    let kind = body_kind.unwrap_or(BodyKind::Empty);
    let (query, target, op, auth, error) = match prepared {
        Ok(p) => (p.query, p.target, Some(p.op), p.auth, None),
        Err(error) => (
            Query::default(),
            Target {
                bucket: None,
                key: None,
            },
            None,
            Authenticated::anonymous(),
            Some(error),
        ),
    };
    let mut ctx = RequestContext {
        state,
        conn,
        head: &head,
        query,
        target,
        body: Body::new(kind),
        payload: auth.payload,
        principal: auth.principal,
        request_id,
        response_started: false,
        status: 0,
        keep_alive,
        continue_sent: false,
    };
    let result = match (op, error) {
        (Some(op), None) => dispatch(&mut ctx, op).await,
        (_, Some(error)) => Err(error),
        (None, None) => Err(S3Error::new(ErrorCode::InternalError)),
    };
    let keep = match result {
        Err(error) if ctx.response_started => {
            log::debug!(
                "{} {} -> {} after the answer began",
                head.method,
                head.path,
                error
            );
            false
        }
        Err(error) => {
            log::debug!("{} {} -> {}", head.method, head.path, error);
            if !framing_ok {
                ctx.keep_alive = false;
            }
            settle_body(&mut ctx).await;
            ctx.send_error(&error).await;
            ctx.keep_alive
        }
        Ok(()) => {
            settle_body(&mut ctx).await;
            ctx.keep_alive
        }
    };
    let record = RequestRecord {
        method: method_label(&head.method),
        path: path_template(&ctx.target),
        status: ctx.status,
        operation: op.map(Operation::name),
        bytes_in: ctx.body.received(),
        bytes_out: ctx.conn.bytes_written() - written_before,
        duration: started.elapsed(),
    };
    finish_request(state, &record, &ctx.request_id);
    keep
}

/// Leaves the connection at the start of the next request: reads what is left of
/// a body the handler did not consume, or marks the connection for closing when
/// that is not possible (the client still waits for a 100, or the rest is large).
async fn settle_body(ctx: &mut RequestContext<'_>) {
    if ctx.body.is_finished() || !ctx.keep_alive {
        return;
    }
    if ctx.head.expects_continue() && !ctx.continue_sent {
        ctx.keep_alive = false;
        return;
    }
    match ctx
        .conn
        .drain_body(&mut ctx.body, limits::DRAIN_BYTES_MAX)
        .await
    {
        Ok(true) => {}
        _ => ctx.keep_alive = false,
    }
}

struct Prepared {
    query: Query,
    target: Target,
    op: Operation,
    auth: Authenticated,
}

/// The stages before a handler, in order: resolve bucket and key, authenticate,
/// route. All run on the head alone, before any body byte is read; routing comes
/// after authentication so that nothing of a request is interpreted (not even the
/// headers that pick an operation) before its signature holds.
async fn prepare(
    state: &CoreState,
    head: &mut RequestHead,
    has_body: bool,
) -> Result<Prepared, S3Error> {
    let target = route::resolve_target(
        head.header("host"),
        &head.path,
        state.config.domain.as_deref(),
    )?;
    let auth = authenticate::authenticate(state, head, has_body).await?;
    let query = Query::parse(&head.query)?;
    let op = route::route(
        &head.method,
        &target,
        &query,
        head.header("x-amz-copy-source").is_some(),
    )?;
    Ok(Prepared {
        query,
        target,
        op,
        auth,
    })
}

async fn dispatch(ctx: &mut RequestContext<'_>, op: Operation) -> Result<(), S3Error> {
    match op {
        Operation::ListBuckets => bucket::list_buckets(ctx).await,
        Operation::CreateBucket => bucket::create_bucket(ctx).await,
        Operation::DeleteBucket => bucket::delete_bucket(ctx).await,
        Operation::HeadBucket => bucket::head_bucket(ctx).await,
        Operation::GetBucketLocation => bucket::get_bucket_location(ctx).await,
        Operation::ListObjects => list::list_objects(ctx).await,
        Operation::ListObjectsV2 => list::list_objects_v2(ctx).await,
        Operation::PutObject => object::put_object(ctx).await,
        Operation::GetObject => object::get_object(ctx).await,
        Operation::HeadObject => object::get_object(ctx).await,
        Operation::DeleteObject => object::delete_object(ctx).await,
        Operation::DeleteObjects => object::delete_objects(ctx).await,
        Operation::CopyObject => copy::copy_object(ctx).await,
        Operation::ListObjectVersions => list::list_object_versions(ctx).await,
        Operation::GetBucketVersioning => list::get_bucket_versioning(ctx).await,
        Operation::GetBucketAcl => acl::get_bucket_acl(ctx).await,
        Operation::PutBucketAcl => acl::put_bucket_acl(ctx).await,
        Operation::GetObjectAcl => acl::get_object_acl(ctx).await,
        Operation::PutObjectAcl => acl::put_object_acl(ctx).await,
        Operation::CreateMultipartUpload => multipart::create_multipart_upload(ctx).await,
        Operation::UploadPart => multipart::upload_part(ctx).await,
        Operation::UploadPartCopy => multipart::upload_part_copy(ctx).await,
        Operation::CompleteMultipartUpload => multipart::complete_multipart_upload(ctx).await,
        Operation::AbortMultipartUpload => multipart::abort_multipart_upload(ctx).await,
        Operation::ListParts => multipart::list_parts(ctx).await,
        Operation::ListMultipartUploads => multipart::list_multipart_uploads(ctx).await,
        Operation::GetObjectAttributes => attributes::get_object_attributes(ctx).await,
        // Nothing here is granted to AllUsers, so an anonymous caller learns no more.
        Operation::NotImplemented(_) if ctx.requester().is_none() => {
            Err(S3Error::new(ErrorCode::AccessDenied))
        }
        Operation::NotImplemented(name) => Err(S3Error::with_message(
            ErrorCode::NotImplemented,
            format!("{name} is not implemented by this server."),
        )),
    }
}
