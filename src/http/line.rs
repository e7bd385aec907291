//! One CRLF- (or LF-) terminated line collected across reads, for the framing
//! lines of chunked and aws-chunked bodies.

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
