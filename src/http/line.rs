//! One CRLF- (or LF-) terminated line collected across reads, for the framing
//! lines of chunked and aws-chunked bodies.

/// The size of a chunk from its chunk line (up to any `;` extension): one to 15 hex
/// digits (RFC 9112 `1*HEXDIG`; no sign, no leading space), then only the blanks the
/// grammar allows before an extension. `None` for anything else.
pub(crate) fn chunk_size(line: &[u8]) -> Option<u64> {
    let size = line.split(|b| *b == b';').next().unwrap_or_default();
    let digits = size.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &size[digits..];
    if digits == 0 || digits > 15 || !rest.iter().all(|b| *b == b' ' || *b == b'\t') {
        return None;
    }
    let text = std::str::from_utf8(&size[..digits]).ok()?;
    u64::from_str_radix(text, 16).ok()
}

/// The line grew past its limit.
#[derive(Debug)]
pub(crate) struct LineTooLong;

#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    line: Vec<u8>,
}

impl LineBuffer {
    /// Consumes `rest` up to and including the next LF, advancing `used` by what it
    /// took. `Ok(None)` until a whole line has arrived; the CR before the LF is dropped.
    pub(crate) fn take(
        &mut self,
        rest: &[u8],
        used: &mut usize,
        max: usize,
    ) -> Result<Option<Vec<u8>>, LineTooLong> {
        match rest.iter().position(|b| *b == b'\n') {
            Some(at) => {
                self.line.extend_from_slice(&rest[..at]);
                *used += at + 1;
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > max {
                    return Err(LineTooLong);
                }
                Ok(Some(line))
            }
            None => {
                self.line.extend_from_slice(rest);
                *used += rest.len();
                // One byte of slack for the CR that may still precede the LF.
                if self.line.len() > max + 1 {
                    return Err(LineTooLong);
                }
                Ok(None)
            }
        }
    }

    /// True when no partial line is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.line.is_empty()
    }
}
