//! XML out (a small writer that escapes everything it is given) and the little
//! XML in that this issue needs (CreateBucketConfiguration). Error documents are
//! rendered here and nowhere else.

use crate::s3::error::{ErrorCode, S3Error};

/// The S3 namespace every response document carries.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Appends `text` to `out` with the five XML special characters escaped.
/// Control characters that XML 1.0 cannot carry are written as character references,
/// which is what S3 does for keys holding them.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                out.push_str("&#");
                out.push_str(&(c as u32).to_string());
                out.push(';');
            }
            c if (c as u32) < 0x20 => {
                out.push_str("&#x");
                out.push_str(&format!("{:X}", c as u32));
                out.push(';');
            }
            c => out.push(c),
        }
    }
}

/// A tiny streaming XML writer: `open`/`close` elements, `element` for leaf text.
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        XmlWriter { out }
    }

    /// Opens the root element with the S3 namespace.
    pub fn root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NAMESPACE);
        self.out.push_str("\">");
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>escaped text</name>`.
    pub fn element(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// Escaped text inside the element opened last.
    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    /// Writes the element only when there is a value.
    pub fn optional(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.element(name, text);
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

impl Default for XmlWriter {
    fn default() -> Self {
        XmlWriter::new()
    }
}

/// The `<Error>` document for `error`, with the request's resource and ids.
pub fn error_document(error: &S3Error, resource: &str, request_id: &str, host_id: &str) -> Vec<u8> {
    let mut xml = XmlWriter::new();
    xml.open("Error");
    xml.element("Code", error.code.as_str());
    xml.element("Message", &error.message);
    for (name, value) in &error.fields {
        xml.element(name, value);
    }
    xml.element("Resource", resource);
    xml.element("RequestId", request_id);
    xml.element("HostId", host_id);
    xml.close("Error");
    xml.finish()
}

/// Reads `LocationConstraint` from a CreateBucketConfiguration body. An empty body
/// means no constraint. Anything that is not that document is `MalformedXML`.
pub fn parse_create_bucket_configuration(body: &[u8]) -> Result<Option<String>, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::new(ErrorCode::MalformedXML))?;
    let text = strip_declaration(text.trim());
    if text.is_empty() {
        return Ok(None);
    }
    let inner = element_content(text, "CreateBucketConfiguration")
        .ok_or_else(|| S3Error::new(ErrorCode::MalformedXML))?;
    let inner = inner.trim();
    if inner.is_empty() {
        return Ok(None);
    }
    match element_content(inner, "LocationConstraint") {
        Some(value) if !value.contains('<') => Ok(Some(value.trim().to_string())),
        // Other children (Bucket, Location for directory buckets) are not served here.
        _ if inner.starts_with('<') && !inner.contains("<LocationConstraint") => Ok(None),
        _ => Err(S3Error::new(ErrorCode::MalformedXML)),
    }
}

fn strip_declaration(text: &str) -> &str {
    if text.starts_with("<?xml") {
        text.find("?>")
            .map_or(text, |end| text[end + 2..].trim_start())
    } else {
        text
    }
}

/// The text between `<name ...>` and `</name>` when `text` is exactly that element
/// (or, for a child, contains it). Attributes such as xmlns are allowed on the start tag.
fn element_content<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}");
    let start = text.find(&open)?;
    let after_name = &text[start + open.len()..];
    if !after_name.starts_with(['>', ' ', '\t', '\n', '\r', '/']) {
        return None;
    }
    let tag_end = after_name.find('>')?;
    if after_name[..tag_end].ends_with('/') {
        return Some("");
    }
    let body = &after_name[tag_end + 1..];
    let close = format!("</{name}>");
    let end = body.rfind(&close)?;
    if !body[end + close.len()..].trim().is_empty() && start == 0 {
        return None;
    }
    Some(&body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_special_characters() {
        let mut out = String::new();
        escape_into(&mut out, "a<b>&\"c'\n\u{1}");
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&apos;&#10;&#x1;");
    }

    #[test]
    fn error_document_has_every_element() {
        let error = S3Error::new(ErrorCode::NoSuchBucket).field("BucketName", "b<1>");
        let xml = String::from_utf8(error_document(&error, "/b", "REQ", "HOST")).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>\
             <Message>The specified bucket does not exist.</Message><BucketName>b&lt;1&gt;</BucketName>\
             <Resource>/b</Resource><RequestId>REQ</RequestId><HostId>HOST</HostId></Error>"
        );
    }

    #[test]
    fn create_bucket_configuration() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <LocationConstraint>eu-west-1</LocationConstraint>
</CreateBucketConfiguration>"#;
        assert_eq!(
            parse_create_bucket_configuration(doc).unwrap().as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(parse_create_bucket_configuration(b"").unwrap(), None);
        assert_eq!(
            parse_create_bucket_configuration(b"<CreateBucketConfiguration/>").unwrap(),
            None
        );
        for bad in [
            &b"garbage"[..],
            b"<CreateBucketConfiguration>",
            b"<Other></Other>",
            b"\xff",
        ] {
            assert_eq!(
                parse_create_bucket_configuration(bad).unwrap_err().code,
                ErrorCode::MalformedXML
            );
        }
    }
}
