//! GetObjectAttributes: what HeadObject and ListParts would say about an object,
//! chosen by `x-amz-object-attributes`, in one XML answer and without its bytes.

use crate::checksum::ChecksumType;
use crate::clock;
use crate::meta::ObjectRow;
use crate::s3::context::{xml_reply, S3Response};
use crate::s3::operation::AttributesInput;
use crate::s3::xml::XmlWriter;

pub(crate) fn get_object_attributes(input: AttributesInput, row: &ObjectRow) -> S3Response {
    let mut xml = XmlWriter::new();
    xml.root("GetObjectAttributesResponse");
    for attribute in input.wanted {
        match attribute {
            "ETag" => xml.element("ETag", &row.etag),
            "Checksum" => write_checksum(&mut xml, row),
            "ObjectParts" => write_parts(&mut xml, row, input.marker, input.max_parts),
            "StorageClass" => xml.element("StorageClass", &row.storage_class),
            _ => xml.element("ObjectSize", &row.size.to_string()),
        }
    }
    xml.close("GetObjectAttributesResponse");
    let mut response = xml_reply(xml);
    response.head.header(
        "Last-Modified",
        clock::format_http_date(row.last_modified_ms.div_euclid(1000)),
    );
    if let Some(version_id) = &row.version_id {
        response.head.header("x-amz-version-id", version_id);
    }
    response
}

/// The object checksum, without the `-<parts>` suffix HeadObject shows on a composite one.
fn write_checksum(xml: &mut XmlWriter, row: &ObjectRow) {
    let (Some((alg, kind)), Some(value)) = (row.checksum_kind(), &row.checksum_value) else {
        return;
    };
    let value = match kind {
        ChecksumType::Composite => value.rsplit_once('-').map_or(value.as_str(), |(v, _)| v),
        ChecksumType::FullObject => value.as_str(),
    };
    xml.open("Checksum");
    xml.element(&format!("Checksum{}", alg.as_str()), value);
    xml.element("ChecksumType", kind.as_str());
    xml.close("Checksum");
}

/// The parts of a multipart object. Parts are listed, paged like ListParts, only
/// when they carry composite checksums; otherwise only their count is told.
fn write_parts(xml: &mut XmlWriter, row: &ObjectRow, marker: u32, max_parts: u32) {
    let Some(count) = row.parts_count else {
        return;
    };
    xml.open("ObjectParts");
    xml.element("PartsCount", &count.to_string());
    if let Some((alg, ChecksumType::Composite)) = row.checksum_kind() {
        let after: Vec<_> = row
            .parts
            .iter()
            .filter(|p| p.part_number > marker)
            .collect();
        let page = &after[..after.len().min(max_parts as usize)];
        let truncated = after.len() > page.len();
        xml.element("PartNumberMarker", &marker.to_string());
        if let Some(last) = page.last() {
            xml.element("NextPartNumberMarker", &last.part_number.to_string());
        }
        xml.element("MaxParts", &max_parts.to_string());
        xml.element("IsTruncated", if truncated { "true" } else { "false" });
        for part in page {
            xml.open("Part");
            xml.element("PartNumber", &part.part_number.to_string());
            xml.element("Size", &part.size.to_string());
            if let Some(value) = &part.checksum_value {
                xml.element(&format!("Checksum{}", alg.as_str()), value);
            }
            xml.close("Part");
        }
    }
    xml.close("ObjectParts");
}
