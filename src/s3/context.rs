//! What a handler works with: the request context (the core's state, the head, the
//! body reader, the authenticated principal) and the shape of its answer. Handlers
//! depend on this module; it depends on none of them.

use crate::auth::PayloadCheck;
use crate::core_state::CoreState;
use crate::error::{ErrorCode, S3Error};
use crate::http::{Body, BodyReader, RequestHead, Response, ResponseHead};
use crate::s3::authenticate::Principal;
use crate::s3::object_stream::ObjectStream;
use crate::s3::xml::XmlWriter;

/// What every S3 handler returns.
pub(crate) type S3Response = Response<ObjectStream>;

/// A response of just a head.
pub(crate) fn reply(head: ResponseHead) -> S3Response {
    Response::new(head, Body::Empty)
}

/// A 200 with an XML document.
pub(crate) fn xml_reply(document: XmlWriter) -> S3Response {
    let mut head = ResponseHead::new(200);
    head.header("Content-Type", "application/xml");
    Response::new(head, Body::Bytes(document.finish()))
}

/// Everything a handler needs about the request it serves, besides its inputs.
pub(crate) struct RequestContext<'a, 'b> {
    pub state: &'a CoreState,
    pub head: &'a RequestHead,
    pub body: &'a mut BodyReader<'b>,
    /// What the verified head still requires of the body.
    pub payload: PayloadCheck,
    /// Who the request acts as, settled by the authentication stage.
    pub principal: Principal,
}

impl RequestContext<'_, '_> {
    /// The requester's canonical id, `None` for an anonymous request.
    pub(crate) fn requester(&self) -> Option<&str> {
        self.principal.requester()
    }

    /// Reads the whole body into memory, for the small XML bodies of bucket operations,
    /// and verifies it against the signed payload hash and any digest headers.
    pub(crate) async fn read_small_body(&mut self, max: usize) -> Result<Vec<u8>, S3Error> {
        self.read_xml_body(max, true).await
    }

    /// As `read_small_body`, for a body the `x-amz-checksum-*` headers do not describe.
    pub(crate) async fn read_completion_body(&mut self, max: usize) -> Result<Vec<u8>, S3Error> {
        self.read_xml_body(max, false).await
    }

    async fn read_xml_body(&mut self, max: usize, checksums: bool) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        loop {
            let room = max + 1 - out.len();
            let n = self
                .body
                .read(&mut out, room.min(crate::limits::BODY_READ_CHUNK_BYTES))
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

    /// `<element><ID/><DisplayName/></element>` for an owner; the display name is known
    /// for the requester, and is the id itself for anyone else.
    pub(crate) fn write_owner(&self, xml: &mut XmlWriter, element: &str, owner_id: &str) {
        xml.open(element);
        xml.element("ID", owner_id);
        let display = if owner_id == self.principal.owner_id() {
            self.principal.display_name()
        } else {
            owner_id
        };
        xml.element("DisplayName", display);
        xml.close(element);
    }
}
