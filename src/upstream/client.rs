//! The client a core uses for every upstream server: it takes a kept-alive connection
//! from the core's pool or opens one, sends the request, and reads the answer's head;
//! it retries what is safe to retry (see `send`) and counts what it does.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::limits;
use crate::upstream::connection::Connection;
use crate::upstream::endpoint::Endpoint;
use crate::upstream::error::{Phase, UpstreamError};
use crate::upstream::pool::Pool;
use crate::upstream::request::Request;
use crate::upstream::response::{idle_allowance, Response};
use crate::upstream::retry::{is_retryable_status, parse_retry_after, Jitter, RetryPolicy};
use crate::upstream::tls::TlsConfig;
use crate::upstream::upload::Upload;

/// The client's timeouts, pool sizes and retry policy. `Default` takes the values in
/// `limits.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Name resolution, TCP connect and TLS handshake together.
    pub connect_timeout: Duration,
    /// From the end of the request to the first byte of the answer.
    pub first_byte_timeout: Duration,
    /// The longest any other read or write may make no progress.
    pub stall_timeout: Duration,
    /// Idle connections kept per endpoint origin (0 disables keep-alive).
    pub idle_per_endpoint_max: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// How much sooner than a server's `Keep-Alive: timeout` its connections leave the pool.
    pub keep_alive_margin: Duration,
    pub retry: RetryPolicy,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_millis(limits::UPSTREAM_CONNECT_TIMEOUT_DEFAULT_MILLIS),
            first_byte_timeout: Duration::from_millis(
                limits::UPSTREAM_FIRST_BYTE_TIMEOUT_DEFAULT_MILLIS,
            ),
            stall_timeout: Duration::from_millis(limits::UPSTREAM_STALL_TIMEOUT_DEFAULT_MILLIS),
            idle_per_endpoint_max: limits::UPSTREAM_IDLE_PER_ENDPOINT_DEFAULT_MAX,
            idle_timeout: Duration::from_secs(limits::UPSTREAM_IDLE_TIMEOUT_DEFAULT_SECS),
            keep_alive_margin: Duration::from_millis(limits::UPSTREAM_KEEP_ALIVE_MARGIN_MILLIS),
            retry: RetryPolicy::default(),
        }
    }
}

/// What the client has done since it was made, for the backend to publish as metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls to `send` and `upload`.
    pub requests: Cell<u64>,
    /// Attempts after the first, of every kind (stale connection, backoff).
    pub retries: Cell<u64>,
    /// Connections opened (TCP connected, TLS handshake done).
    pub connections_opened: Cell<u64>,
    /// Requests sent on a connection taken from the pool.
    pub connections_reused: Cell<u64>,
    /// Pooled connections found closed by the server: before a request (dropped unused)
    /// or when one was sent on them.
    pub connections_stale: Cell<u64>,
}

fn bump(counter: &Cell<u64>) {
    counter.set(counter.get() + 1);
}

/// What a `Client` and the responses and uploads it hands out share.
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    tls: TlsConfig,
    pool: Pool<Connection>,
    pub(crate) counters: Counters,
    jitter: RefCell<Jitter>,
}

impl Shared {
    /// Puts a connection whose exchange ended cleanly back in the pool, unless it may
    /// not stay idle at all.
    pub(crate) fn release(&self, origin: &str, connection: Connection) {
        let keep = idle_allowance(
            self.config.idle_timeout,
            connection.server_idle(),
            self.config.keep_alive_margin,
        );
        if keep.is_zero() {
            return;
        }
        let now = Instant::now();
        self.pool.put(origin, connection, now + keep, now);
    }

    /// A connection to `endpoint` and whether it came from the pool: a pooled one
    /// unless `fresh` (one its server closed while it was idle is dropped unused),
    /// else a new one.
    pub(crate) async fn connection(
        &self,
        endpoint: &Endpoint,
        fresh: bool,
    ) -> Result<(Connection, bool), UpstreamError> {
        if !fresh {
            while let Some(connection) = self.pool.take(endpoint.origin(), Instant::now()) {
                if connection.still_open() {
                    bump(&self.counters.connections_reused);
                    return Ok((connection, true));
                }
                bump(&self.counters.connections_stale);
            }
        }
        let connection =
            Connection::connect(endpoint, &self.tls, self.config.connect_timeout).await?;
        bump(&self.counters.connections_opened);
        Ok((connection, false))
    }

    /// The error to report for `error` on a connection: `Stale` when the connection
    /// came from the pool and failed before any byte of the answer (so the server
    /// never acted on the request); the pool's other connections to that origin,
    /// idle as long, are closed too.
    pub(crate) fn classify(&self, error: UpstreamError, reused: bool) -> UpstreamError {
        let silent = matches!(
            error,
            UpstreamError::Io {
                phase: Phase::Send | Phase::FirstByte,
                ..
            }
        );
        if !(reused && silent) {
            return error;
        }
        bump(&self.counters.connections_stale);
        self.pool.clear(error.endpoint());
        UpstreamError::Stale {
            endpoint: error.endpoint().to_string(),
        }
    }

    /// The wait before retry number `retry`.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let random = self.jitter.borrow_mut().next();
        self.config.retry.backoff(retry, random)
    }
}

/// One core's HTTP/1.1 client for upstream servers. Cloning shares it (the pool and
/// counters with it); it is not `Send`: each runtime makes its own from the same
/// `ClientConfig` and `TlsConfig`.
#[derive(Clone)]
pub struct Client {
    shared: Rc<Shared>,
}

impl Client {
    pub fn new(config: ClientConfig, tls: TlsConfig) -> Client {
        let pool = Pool::new(config.idle_per_endpoint_max);
        Client {
            shared: Rc::new(Shared {
                config,
                tls,
                pool,
                counters: Counters::default(),
                jitter: RefCell::new(Jitter::new()),
            }),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Idle connections the pool holds for the endpoint's origin.
    pub fn idle_connections(&self, endpoint: &Endpoint) -> usize {
        self.shared.pool.idle_count(endpoint.origin())
    }

    /// Closes the idle connections whose time is up; returns how many. The pool also
    /// does this whenever a connection is returned; a backend may call it from a
    /// timer so that idle sockets do not outlive their use on a quiet core.
    pub fn evict_idle(&self) -> usize {
        self.shared.pool.evict_expired(Instant::now())
    }

    /// Sends `request` (its body in memory) and reads the answer's head; the body is
    /// read from the `Response`. Retries, each on a pooled or new connection:
    /// - a pooled connection the server had closed (`Stale`): once, at once, on a new
    ///   connection, whatever the method (the server never saw the request);
    /// - a failure to connect: after a backoff, whatever the method (nothing was sent);
    /// - for an idempotent request, a timeout or failure before any byte of the answer,
    ///   and the answers 429, 500, 502, 503, 504 (waiting `Retry-After` seconds when
    ///   given, capped at `max_delay`): after a backoff.
    ///
    /// At most `retry.max_attempts` attempts in all (the stale retry not counted); the
    /// last answer, whatever its status, is returned.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        request: Request,
    ) -> Result<Response, UpstreamError> {
        let shared = &self.shared;
        bump(&shared.counters.requests);
        let origin = endpoint.origin();
        let head = request
            .encode_head(endpoint, request.body.len() as u64)
            .map_err(|message| UpstreamError::invalid_request(origin, message))?;
        let idempotent = request.idempotent;
        let mut exchange = Exchange {
            head,
            no_body: request.is_head(),
            close: request.asks_close(),
            body: request.body,
        };
        let policy = shared.config.retry;
        let mut attempt = 1;
        let mut fresh = false;
        let mut stale_retried = false;
        loop {
            let result = self.attempt(endpoint, &mut exchange, fresh).await;
            fresh = false;
            let wait = match result {
                Ok(response) => {
                    let retry = idempotent
                        && is_retryable_status(response.status())
                        && attempt < policy.max_attempts;
                    if !retry {
                        return Ok(response);
                    }
                    let retry_after = response.header("retry-after").and_then(parse_retry_after);
                    log::debug!(
                        "upstream {origin}: {} {} answered {}; retrying",
                        request.method,
                        request.target,
                        response.status()
                    );
                    response.discard(limits::UPSTREAM_DRAIN_BYTES_MAX).await;
                    let random = shared.jitter.borrow_mut().next();
                    policy.delay_after_answer(attempt, retry_after, random)
                }
                Err(UpstreamError::Stale { .. }) if !stale_retried => {
                    stale_retried = true;
                    fresh = true;
                    bump(&shared.counters.retries);
                    continue;
                }
                Err(error) => {
                    let nothing_sent = error.phase() == Phase::Connect;
                    let retry = error.is_retryable()
                        && (idempotent || nothing_sent)
                        && attempt < policy.max_attempts;
                    if !retry {
                        return Err(error);
                    }
                    log::debug!("{error}; retrying");
                    shared.backoff(attempt)
                }
            };
            bump(&shared.counters.retries);
            attempt += 1;
            monoio::time::sleep(wait).await;
        }
    }

    /// One attempt of `send`: a connection, the request written, the answer's head read.
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        exchange: &mut Exchange,
        fresh: bool,
    ) -> Result<Response, UpstreamError> {
        let shared = &self.shared;
        let origin = endpoint.origin();
        let config = &shared.config;
        let (mut connection, reused) = shared.connection(endpoint, fresh).await?;
        let head = std::mem::take(&mut exchange.head);
        let (written, head) = connection
            .write_all(head, config.stall_timeout, origin)
            .await;
        exchange.head = head;
        if let Err(error) = written {
            return Err(shared.classify(error, reused));
        }
        if !exchange.body.is_empty() {
            let body = std::mem::take(&mut exchange.body);
            let (written, body) = connection
                .write_all(body, config.stall_timeout, origin)
                .await;
            exchange.body = body;
            if let Err(error) = written {
                return Err(shared.classify(error, reused));
            }
        }
        let head = connection
            .read_head(config.first_byte_timeout, config.stall_timeout, origin)
            .await
            .map_err(|error| shared.classify(error, reused))?;
        Response::new(
            shared.clone(),
            origin,
            connection,
            head,
            exchange.no_body,
            exchange.close,
        )
    }

    /// Starts a request whose body of exactly `length` bytes the caller streams: the
    /// head is sent now, the body through `Upload::write`, and `Upload::finish` reads
    /// the answer. `request.body` must be empty. A failure to connect is retried after
    /// a backoff, and a stale pooled connection once at once, as long as no body byte
    /// was sent; after that nothing is retried, because the body cannot be replayed: a
    /// `Stale` error from `write` or `finish` tells the caller that the server never
    /// saw the request and it may stream the body again.
    pub async fn upload(
        &self,
        endpoint: &Endpoint,
        request: Request,
        length: u64,
    ) -> Result<Upload, UpstreamError> {
        let shared = &self.shared;
        bump(&shared.counters.requests);
        let origin = endpoint.origin();
        if !request.body.is_empty() {
            return Err(UpstreamError::invalid_request(
                origin,
                "an upload streams its body: the request's own body must be empty",
            ));
        }
        let mut head = request
            .encode_head(endpoint, length)
            .map_err(|message| UpstreamError::invalid_request(origin, message))?;
        let policy = shared.config.retry;
        let mut attempt = 1;
        let mut fresh = false;
        let mut stale_retried = false;
        loop {
            let error = match shared.connection(endpoint, fresh).await {
                Ok((mut connection, reused)) => {
                    let (written, returned) = connection
                        .write_all(head, shared.config.stall_timeout, origin)
                        .await;
                    head = returned;
                    match written {
                        Ok(()) => {
                            return Ok(Upload::new(
                                shared.clone(),
                                origin,
                                connection,
                                reused,
                                length,
                                request.asks_close(),
                            ))
                        }
                        Err(error) => shared.classify(error, reused),
                    }
                }
                Err(error) => error,
            };
            fresh = false;
            match error {
                UpstreamError::Stale { .. } if !stale_retried => {
                    stale_retried = true;
                    fresh = true;
                    bump(&shared.counters.retries);
                }
                error
                    if error.phase() == Phase::Connect
                        && error.is_retryable()
                        && attempt < policy.max_attempts =>
                {
                    log::debug!("{error}; retrying");
                    bump(&shared.counters.retries);
                    monoio::time::sleep(shared.backoff(attempt)).await;
                    attempt += 1;
                }
                error => return Err(error),
            }
        }
    }
}

/// The bytes of one request, kept between attempts.
struct Exchange {
    head: Vec<u8>,
    /// The request was HEAD: its answer has no body.
    no_body: bool,
    /// The request said `Connection: close`.
    close: bool,
    body: Vec<u8>,
}
