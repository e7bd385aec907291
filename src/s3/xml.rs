//! XML out (a small writer that escapes everything it is given) and the little
//! XML in that this issue needs (CreateBucketConfiguration). Error documents are
//! rendered here and nowhere else.

use crate::error::{ErrorCode, S3Error};

/// The S3 namespace every response document carries.
pub(crate) const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Appends `text` to `out` with the five XML special characters escaped.
/// Control characters that XML 1.0 cannot carry are written as character references,
/// which is what S3 does for keys holding them.
pub(crate) fn escape_into(out: &mut String, text: &str) {
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
pub(crate) struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub(crate) fn new() -> XmlWriter {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        XmlWriter { out }
    }

    /// Opens the root element with the S3 namespace.
    pub(crate) fn root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NAMESPACE);
        self.out.push_str("\">");
    }

    pub(crate) fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub(crate) fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>escaped text</name>`.
    pub(crate) fn element(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// Markup written as is: only for constant tags with attributes.
    pub(crate) fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// Escaped text inside the element opened last.
    pub(crate) fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    /// Writes the element only when there is a value.
    pub(crate) fn optional(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.element(name, text);
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

impl Default for XmlWriter {
    fn default() -> Self {
        XmlWriter::new()
    }
}

/// The `<Error>` document for `error`, with the request's resource and ids.
pub(crate) fn error_document(
    error: &S3Error,
    resource: &str,
    request_id: &str,
    host_id: &str,
) -> Vec<u8> {
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
pub(crate) fn parse_create_bucket_configuration(body: &[u8]) -> Result<Option<String>, S3Error> {
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

/// A parsed XML element: its local name (namespace prefix dropped), children and text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    pub name: String,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child with this local name.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name, in order.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of the first child with this name.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// Parses a small request document (the bodies S3 clients send: completion
/// lists, configurations) into an element tree. Any malformation, DOCTYPE or
/// depth beyond 32 is `MalformedXML`: request bodies never need more.
pub(crate) fn parse_document(body: &[u8]) -> Result<Element, S3Error> {
    let malformed = || S3Error::new(ErrorCode::MalformedXML);
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let mut rest = strip_declaration(text.trim_start_matches('\u{feff}').trim());
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or_else(malformed)?;
            rest = &after[end + 3..];
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            return Err(malformed());
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or_else(malformed)?;
            let name = local_name(after[..end].trim());
            let element = stack.pop().ok_or_else(malformed)?;
            if element.name != name {
                return Err(malformed());
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return Err(malformed()),
            }
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').ok_or_else(malformed)?;
            let tag = &after[..end];
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = local_name(tag.split_whitespace().next().ok_or_else(malformed)?);
            if name.is_empty() || root.is_some() || stack.len() >= 32 {
                return Err(malformed());
            }
            let element = Element {
                name: name.to_string(),
                ..Element::default()
            };
            if self_closing {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            } else {
                stack.push(element);
            }
            rest = &after[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let raw = &rest[..end];
            match stack.last_mut() {
                Some(element) => element.text.push_str(&unescape(raw).ok_or_else(malformed)?),
                None if raw.trim().is_empty() => {}
                None => return Err(malformed()),
            }
            rest = &rest[end..];
        }
    }
    if !stack.is_empty() {
        return Err(malformed());
    }
    root.ok_or_else(malformed)
}

fn local_name(qualified: &str) -> &str {
    qualified.rsplit(':').next().unwrap_or(qualified)
}

/// Decodes the five predefined entities and numeric character references.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find(';')?;
        let entity = &after[..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    entity.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_a_completion_document() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <!-- two parts -->
  <Part><PartNumber>1</PartNumber><ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag></Part>
  <Part><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag><PartNumber>2</PartNumber></Part>
  <Empty/>
</CompleteMultipartUpload>"#;
        let root = parse_document(doc).unwrap();
        assert_eq!(root.name, "CompleteMultipartUpload");
        let parts: Vec<_> = root.children_named("Part").collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].child_text("ETag"),
            Some("\"a54357aff0632cce46d942af68356b38\"")
        );
        assert_eq!(parts[1].child_text("PartNumber"), Some("2"));
        assert!(root.child("Empty").is_some());
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            &b""[..],
            b"<a>",
            b"<a></b>",
            b"<a/><b/>",
            b"text",
            b"<!DOCTYPE x><a/>",
            b"<a>&bogus;</a>",
            b"\xff",
        ] {
            assert!(
                parse_document(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(parse_document(deep.as_bytes()).is_err());
    }
}
