//! Reading the XML an upstream store answers with (listings, errors), through
//! quick-xml: the records of a listing and the fields of each, entities resolved.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The texts of some named elements, in the order they were asked for (`None` for an
/// element that is absent).
pub(super) type Fields = Vec<Option<String>>;

/// For each element named `record` (at any depth), the text of its descendants named
/// in `fields`, in that order: a direct child by its name (`Key`), a deeper one by
/// its path under the record (`Properties/Last-Modified`). Also returns the text of
/// the top-level children named in `extra` (a continuation token, say).
pub(super) fn records(
    body: &[u8],
    record: &str,
    fields: &[&str],
    extra: &[&str],
) -> Result<(Vec<Fields>, Fields), String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_string())?;
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut found = Vec::new();
    let mut current: Option<Vec<Option<String>>> = None;
    // The depth of the current record's element in `path`.
    let mut record_depth = 0;
    let mut tops: Vec<Option<String>> = vec![None; extra.len()];
    // The text being collected and where it goes: a field of the current record, or a
    // top-level value.
    let mut collecting: Option<(bool, usize, String)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_string();
                if name == record && current.is_none() {
                    current = Some(vec![None; fields.len()]);
                    record_depth = path.len();
                } else if current.is_some() {
                    let mut relative = path[record_depth + 1..].join("/");
                    if !relative.is_empty() {
                        relative.push('/');
                    }
                    relative.push_str(&name);
                    if let Some(index) = fields.iter().position(|f| *f == relative) {
                        collecting = Some((true, index, String::new()));
                    }
                } else if path.len() == 1 {
                    if let Some(index) = extra.iter().position(|f| *f == name) {
                        collecting = Some((false, index, String::new()));
                    }
                }
                path.push(name);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                if let Some((in_record, index, value)) = collecting.take() {
                    match (in_record, current.as_mut()) {
                        (true, Some(fields)) => fields[index] = Some(value),
                        _ => tops[index] = Some(value),
                    }
                } else if name == record && path.len() == record_depth {
                    found.extend(current.take());
                }
            }
            Event::Text(t) => {
                if let Some((_, _, value)) = collecting.as_mut() {
                    value.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some((_, _, value)) = collecting.as_mut() {
                    value.push_str(&c);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, _, value)) = collecting.as_mut() {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        _ => match &*r {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => return Err(format!("unknown entity &{other};")),
                        },
                    };
                    value.push(resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((found, tops))
}

/// The `Code` and `Message` of an S3-style error document, when the body is one.
pub(super) fn error_code(body: &[u8]) -> Option<(String, String)> {
    let (errors, _) = records(body, "Error", &["Code", "Message"], &[]).ok()?;
    let first = errors.into_iter().next()?;
    let mut fields = first.into_iter();
    let code = fields.next().flatten()?;
    Some((code, fields.next().flatten().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_records_and_tokens() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><IsTruncated>true</IsTruncated>
  <Contents><Key>p/a&amp;b</Key><LastModified>2026-12-02T05:00:00.000Z</LastModified><Size>3</Size></Contents>
  <Contents><Key>p/&#x41;</Key></Contents>
  <NextContinuationToken>tok&lt;1&gt;</NextContinuationToken>
</ListBucketResult>"#;
        let (records, tops) = records(
            body,
            "Contents",
            &["Key", "LastModified"],
            &["NextContinuationToken", "IsTruncated"],
        )
        .unwrap();
        assert_eq!(
            records,
            vec![
                vec![
                    Some("p/a&b".to_string()),
                    Some("2026-12-02T05:00:00.000Z".to_string())
                ],
                vec![Some("p/A".to_string()), None],
            ]
        );
        assert_eq!(
            tops,
            vec![Some("tok<1>".to_string()), Some("true".to_string())]
        );
        assert!(records_of_garbage().is_err());
    }

    #[test]
    fn nested_fields_by_their_path() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1/" ContainerName="c">
  <Prefix>p/</Prefix>
  <Blobs>
    <Blob><Name>p/a</Name><Properties><Last-Modified>Wed, 02 Dec 2026 05:00:00 GMT</Last-Modified><Content-Length>3</Content-Length></Properties></Blob>
    <Blob><Name>p/b</Name><Properties/></Blob>
  </Blobs>
  <NextMarker>m1</NextMarker>
</EnumerationResults>"#;
        let (records, tops) = records(
            body,
            "Blob",
            &["Name", "Properties/Last-Modified"],
            &["NextMarker"],
        )
        .unwrap();
        assert_eq!(
            records,
            vec![
                vec![
                    Some("p/a".to_string()),
                    Some("Wed, 02 Dec 2026 05:00:00 GMT".to_string())
                ],
                vec![Some("p/b".to_string()), None],
            ]
        );
        assert_eq!(tops, vec![Some("m1".to_string())]);
    }

    fn records_of_garbage() -> Result<(), String> {
        records(b"<a><b></a>", "b", &["c"], &[]).map(drop)
    }

    #[test]
    fn error_documents() {
        let body = b"<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>";
        assert_eq!(
            error_code(body),
            Some(("NoSuchBucket".to_string(), "gone".to_string()))
        );
        assert_eq!(error_code(b"<CopyObjectResult/>"), None);
        assert_eq!(error_code(b"not xml at all <"), None);
    }
}
