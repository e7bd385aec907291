//! The configuration documents clients send (versioning today; lifecycle, CORS,
//! tagging and object lock as they come), read through quick-xml into the element
//! tree of `xml::Element`: entities resolved, namespaces dropped, and anything beyond
//! what a configuration needs (a DOCTYPE, a second root, text outside the root, depth
//! past `MAX_DEPTH`) refused as MalformedXML.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{ErrorCode, S3Error};
use crate::s3::xml::Element;

/// Deeper than any S3 configuration document nests.
const MAX_DEPTH: usize = 16;

/// Parses a configuration document whose root element must be `root`.
pub(crate) fn parse_config(body: &[u8], root: &str) -> Result<Element, S3Error> {
    let malformed = || S3Error::new(ErrorCode::MalformedXML);
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let mut reader = Reader::from_str(text.trim_start_matches('\u{feff}'));
    let mut stack: Vec<Element> = Vec::new();
    let mut done: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|_| malformed())?;
        match event {
            Event::Start(start) => {
                if done.is_some() || stack.len() >= MAX_DEPTH {
                    return Err(malformed());
                }
                let name = start.local_name().as_ref().to_string();
                stack.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::Empty(empty) => {
                let name = empty.local_name().as_ref().to_string();
                let element = Element {
                    name,
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if done.is_none() => done = Some(element),
                    None => return Err(malformed()),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(malformed)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => done = Some(element),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(malformed()),
                }
            }
            Event::CData(c) => {
                let element = stack.last_mut().ok_or_else(malformed)?;
                element.text.push_str(&c);
            }
            Event::GeneralRef(r) => {
                let element = stack.last_mut().ok_or_else(malformed)?;
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        _ => return Err(malformed()),
                    },
                    Err(_) => return Err(malformed()),
                };
                element.text.push(resolved);
            }
            Event::DocType(_) => return Err(malformed()),
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
        }
    }
    match done {
        Some(element) if stack.is_empty() && element.name == root => Ok(element),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_become_trees() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Status>Enabled</Status><!-- a comment --><MfaDelete/><X>a&amp;b&#x21;</X>
</VersioningConfiguration>"#;
        let root = parse_config(doc, "VersioningConfiguration").unwrap();
        assert_eq!(root.child_text("Status"), Some("Enabled"));
        assert_eq!(root.child_text("MfaDelete"), Some(""));
        assert_eq!(root.child_text("X"), Some("a&b!"));
        for bad in [
            &b""[..],
            b"garbage",
            b"<VersioningConfiguration>",
            b"<Other></Other>",
            b"<VersioningConfiguration></VersioningConfiguration><Second/>",
            b"<!DOCTYPE x [<!ENTITY e \"e\">]><VersioningConfiguration/>",
            b"<VersioningConfiguration>&e;</VersioningConfiguration>",
            b"<VersioningConfiguration><a></b></VersioningConfiguration>",
            b"\xff",
        ] {
            assert_eq!(
                parse_config(bad, "VersioningConfiguration")
                    .unwrap_err()
                    .code,
                ErrorCode::MalformedXML,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse_config(deep.as_bytes(), "a").is_err());
    }
}
