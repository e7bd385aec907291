//! GetObjectAttributes: what HeadObject and ListParts would say about an object,
//! chosen by `x-amz-object-attributes`, in one XML answer and without its bytes.

use crate::checksum::ChecksumType;
use crate::clock;
use crate::limits;
use crate::meta::ObjectRow;
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::multipart::recorded_checksum;
use crate::s3::object::readable_object;
use crate::s3::service::RequestContext;
use crate::s3::xml::XmlWriter;

/// The attributes a client may ask for, in the order S3 answers them.
const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

/// The attributes named by every `x-amz-object-attributes` header (comma-separated,
/// possibly repeated), in answer order; at least one is required and every name must be known.
fn requested_attributes(ctx: &RequestContext<'_>) -> Result<Vec<&'static str>, S3Error> {
    let mut wanted = Vec::new();
    for (name, value) in &ctx.head.headers {
        if !name.eq_ignore_ascii_case("x-amz-object-attributes") {
            continue;
        }
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let known = ATTRIBUTES.iter().find(|a| a.eq_ignore_ascii_case(item));
            match known {
                Some(attribute) if !wanted.contains(attribute) => wanted.push(*attribute),
                Some(_) => {}
                None => {
                    return Err(S3Error::with_message(
                        ErrorCode::InvalidArgument,
                        "Invalid attribute name specified.",
                    )
                    .field("ArgumentName", "x-amz-object-attributes")
                    .field("ArgumentValue", item))
                }
            }
        }
    }
    if wanted.is_empty() {
        return Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        )
        .field("ArgumentName", "x-amz-object-attributes"));
    }
    Ok(ATTRIBUTES
        .into_iter()
        .filter(|a| wanted.contains(a))
        .collect())
}

/// A non-negative integer header, `default` when absent.
fn count_header(
    ctx: &RequestContext<'_>,
    name: &'static str,
    default: u32,
) -> Result<u32, S3Error> {
    match ctx.head.header(name) {
        None => Ok(default),
        Some(value) => value.trim().parse::<u32>().map_err(|_| {
            S3Error::with_message(
                ErrorCode::InvalidArgument,
                format!("Provided {name} not an integer or within integer range"),
            )
            .field("ArgumentName", name)
            .field("ArgumentValue", value)
        }),
    }
}

pub async fn get_object_attributes(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let wanted = requested_attributes(ctx)?;
    let max_parts = count_header(ctx, "x-amz-max-parts", limits::LIST_KEYS_MAX as u32)?
        .min(limits::LIST_KEYS_MAX as u32);
    let marker = count_header(ctx, "x-amz-part-number-marker", 0)?;
    let (_, row) = readable_object(ctx).await?;
    let mut xml = XmlWriter::new();
    xml.root("GetObjectAttributesResponse");
    for attribute in wanted {
        match attribute {
            "ETag" => xml.element("ETag", &row.etag),
            "Checksum" => write_checksum(&mut xml, &row),
            "ObjectParts" => write_parts(&mut xml, &row, marker, max_parts),
            "StorageClass" => xml.element("StorageClass", &row.storage_class),
            _ => xml.element("ObjectSize", &row.size.to_string()),
        }
    }
    xml.close("GetObjectAttributesResponse");
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    response.header(
        "Last-Modified",
        clock::format_http_date(row.last_modified_ms.div_euclid(1000)),
    );
    ctx.send(response, &xml.finish()).await
}

/// The object checksum, without the `-<parts>` suffix HeadObject shows on a composite one.
fn write_checksum(xml: &mut XmlWriter, row: &ObjectRow) {
    let (Some((alg, kind)), Some(value)) = (recorded_checksum(row), &row.checksum_value) else {
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
    if let Some((alg, ChecksumType::Composite)) = recorded_checksum(row) {
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
