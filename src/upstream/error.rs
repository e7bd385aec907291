//! What can go wrong talking to an upstream server, typed so that a backend acts on
//! the kind (retry, resend, give up) instead of matching message text. An HTTP status
//! is never an error here: any answer the server gives reaches the caller as a
//! `Response`.

use std::fmt;
use std::io;
use std::time::Duration;

/// Where in an exchange a failure happened. Everything before `Receive` happened
/// before any byte of the answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Resolving the host name, connecting, and the TLS handshake.
    Connect,
    /// Writing the request head or body.
    Send,
    /// Waiting for the first byte of the answer after the request was sent.
    FirstByte,
    /// Reading the rest of the answer's head, or its body.
    Receive,
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Phase::Connect => "connecting",
            Phase::Send => "sending the request",
            Phase::FirstByte => "waiting for the answer",
            Phase::Receive => "reading the answer",
        }
    }
}

/// A failed exchange with an upstream server. Each variant names the endpoint
/// (`scheme://host:port`) it was talking to.
#[derive(Debug)]
pub enum UpstreamError {
    /// The server could not be reached: the name did not resolve, or every address
    /// refused or failed the connection. Nothing was sent.
    Connect { endpoint: String, source: io::Error },
    /// A deadline passed: the connect timeout, the first-byte timeout, or the stall
    /// timeout (no progress reading or writing) in the given phase.
    Timeout {
        endpoint: String,
        phase: Phase,
        after: Duration,
    },
    /// The TLS handshake was refused: the certificate is not trusted or not for this
    /// host, or the server sent an alert.
    Tls {
        endpoint: String,
        source: rustls::Error,
    },
    /// The server's answer is not well-formed HTTP/1.1 (a bad status line, a head too
    /// large, conflicting or malformed framing).
    Protocol { endpoint: String, message: String },
    /// A kept-alive connection taken from the pool had been closed by the server while
    /// idle: it ended or reset before any byte of the answer. The server never acted
    /// on the request. The client resends a replayable request by itself; this reaches
    /// the caller only for a streamed upload, which it may start again from the top.
    Stale { endpoint: String },
    /// The answer's body is longer than the caller's limit for reading it whole.
    TooLarge { endpoint: String, limit: usize },
    /// The request cannot be sent as given (a header with a line break, a streamed
    /// body longer or shorter than its declared length). Nothing more was sent.
    InvalidRequest { endpoint: String, message: String },
    /// The connection failed in the given phase (reset, closed early, other IO).
    Io {
        endpoint: String,
        phase: Phase,
        source: io::Error,
    },
}

impl UpstreamError {
    /// True for a transient failure that happened before any byte of an answer: the
    /// server cannot have answered, so a new attempt may succeed, and for an idempotent
    /// request it is safe. (A timeout while waiting for the first byte qualifies too,
    /// though the server may have acted: hence idempotent requests only.)
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Connect { .. } | UpstreamError::Stale { .. } => true,
            UpstreamError::Timeout { phase, .. } | UpstreamError::Io { phase, .. } => {
                *phase != Phase::Receive
            }
            UpstreamError::Tls { .. }
            | UpstreamError::Protocol { .. }
            | UpstreamError::TooLarge { .. }
            | UpstreamError::InvalidRequest { .. } => false,
        }
    }

    /// The endpoint the failed exchange was with.
    pub fn endpoint(&self) -> &str {
        match self {
            UpstreamError::Connect { endpoint, .. }
            | UpstreamError::Timeout { endpoint, .. }
            | UpstreamError::Tls { endpoint, .. }
            | UpstreamError::Protocol { endpoint, .. }
            | UpstreamError::Stale { endpoint }
            | UpstreamError::TooLarge { endpoint, .. }
            | UpstreamError::InvalidRequest { endpoint, .. }
            | UpstreamError::Io { endpoint, .. } => endpoint,
        }
    }

    /// The phase of a timeout or IO failure, for the retry rules; `Connect` for a
    /// failure to connect or a refused handshake, `Receive` for a bad answer.
    pub fn phase(&self) -> Phase {
        match self {
            UpstreamError::Connect { .. } | UpstreamError::Tls { .. } => Phase::Connect,
            UpstreamError::Timeout { phase, .. } | UpstreamError::Io { phase, .. } => *phase,
            UpstreamError::Stale { .. } | UpstreamError::InvalidRequest { .. } => Phase::Send,
            UpstreamError::Protocol { .. } | UpstreamError::TooLarge { .. } => Phase::Receive,
        }
    }

    pub(crate) fn protocol(endpoint: &str, message: impl Into<String>) -> UpstreamError {
        UpstreamError::Protocol {
            endpoint: endpoint.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn io(endpoint: &str, phase: Phase, source: io::Error) -> UpstreamError {
        UpstreamError::Io {
            endpoint: endpoint.to_string(),
            phase,
            source,
        }
    }

    pub(crate) fn timeout(endpoint: &str, phase: Phase, after: Duration) -> UpstreamError {
        UpstreamError::Timeout {
            endpoint: endpoint.to_string(),
            phase,
            after,
        }
    }

    pub(crate) fn invalid_request(endpoint: &str, message: impl Into<String>) -> UpstreamError {
        UpstreamError::InvalidRequest {
            endpoint: endpoint.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream {}: ", self.endpoint())?;
        match self {
            UpstreamError::Connect { source, .. } => write!(f, "cannot connect: {source}"),
            UpstreamError::Timeout { phase, after, .. } => {
                write!(
                    f,
                    "timed out {} (after {} ms)",
                    phase.describe(),
                    after.as_millis()
                )
            }
            UpstreamError::Tls { source, .. } => write!(f, "TLS handshake refused: {source}"),
            UpstreamError::Protocol { message, .. } => write!(f, "malformed answer: {message}"),
            UpstreamError::Stale { .. } => f.write_str(
                "the pooled connection had been closed by the server before it answered; \
                 the streamed body was not received and can be sent again",
            ),
            UpstreamError::TooLarge { limit, .. } => {
                write!(f, "the answer's body is longer than {limit} bytes")
            }
            UpstreamError::InvalidRequest { message, .. } => {
                write!(f, "request not sent: {message}")
            }
            UpstreamError::Io { phase, source, .. } => {
                write!(f, "connection failed {}: {source}", phase.describe())
            }
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Connect { source, .. } | UpstreamError::Io { source, .. } => {
                Some(source)
            }
            UpstreamError::Tls { source, .. } => Some(source),
            _ => None,
        }
    }
}
