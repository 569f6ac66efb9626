//! socket.io-client 2.x over WebSocket alone: the query it appends to a namespace's CONNECT
//! packet (`40/workflow?token=…,`) dropped from its frames as the gateway reads them.
//!
//! socketioxide reads that query as part of the namespace's name and answers "Invalid namespace"
//! (docs/upstream.md). Over long-polling the session front rewrites the posted body; over a
//! WebSocket the packet arrives inside a frame that only the connection sees, so the connection
//! (`connection::GuardedIo`) passes what it reads through this filter once the session front has
//! marked it as carrying an Engine.IO protocol 3 WebSocket. The query is also on the session's
//! handshake URL, which is where admission reads the token, so nothing is lost.
//!
//! The filter follows RFC 6455 framing from the first frame after the handshake. Unfragmented
//! text frames up to [`MAX_FRAME`] are held until whole; one that starts `40/` with a `?` in its
//! namespace is rewritten (unmasked, cut, masked again with its own key, its length recounted).
//! Everything else passes as it came. Anything a client should not send (an unmasked frame,
//! reserved bits) turns the filter off for the rest of the connection: then socketioxide sees
//! exactly what the client sent, as without the filter.

/// Text frames held whole to be looked at; a CONNECT packet is far smaller.
pub(crate) const MAX_FRAME: usize = 4096;

/// The filter's state between reads.
#[derive(Debug, Default)]
pub(crate) struct ConnectFilter {
    /// Bytes read and not yet handed on: a frame header not yet complete, or a held frame.
    held: Vec<u8>,
    /// Bytes of the current frame's payload to pass on untouched.
    passing: u64,
    /// Off: everything passes.
    off: bool,
}

/// A frame header, parsed.
struct Header {
    fin: bool,
    opcode: u8,
    len: u64,
    /// Header bytes, mask key included.
    size: usize,
    mask: [u8; 4],
}

impl ConnectFilter {
    /// Takes `input` (bytes just read) and appends what to hand on to `output`.
    pub(crate) fn feed(&mut self, mut input: &[u8], output: &mut Vec<u8>) {
        if self.off {
            output.extend_from_slice(input);
            return;
        }
        while !input.is_empty() {
            if self.passing > 0 {
                let n = usize::try_from(self.passing).unwrap_or(usize::MAX).min(input.len());
                output.extend_from_slice(&input[..n]);
                self.passing -= n as u64;
                input = &input[n..];
                continue;
            }
            self.held.extend_from_slice(input);
            input = &[];
            self.drain(output);
        }
    }

    /// Hands on every complete frame (or frame start) in `held`.
    fn drain(&mut self, output: &mut Vec<u8>) {
        loop {
            let header = match parse_header(&self.held) {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(()) => {
                    self.off = true;
                    output.append(&mut self.held);
                    return;
                }
            };
            let whole = header.size as u64 + header.len;
            let look = header.fin && header.opcode == 1 && whole <= MAX_FRAME as u64;
            if look {
                let whole = whole as usize;
                if self.held.len() < whole {
                    return;
                }
                let frame: Vec<u8> = self.held.drain(..whole).collect();
                match rewritten(&header, &frame[header.size..]) {
                    Some(frame) => output.extend_from_slice(&frame),
                    None => output.extend_from_slice(&frame),
                }
                continue;
            }
            // Pass the frame through: what is held of it now, the rest as it comes.
            let have = self.held.len() as u64;
            if have >= whole {
                output.extend(self.held.drain(..whole as usize));
                continue;
            }
            self.passing = whole - have;
            output.append(&mut self.held);
            return;
        }
    }
}

/// A client frame's header at the start of `bytes`: `None` while incomplete, `Err` when it is not
/// something a client sends.
fn parse_header(bytes: &[u8]) -> Result<Option<Header>, ()> {
    let [b0, b1, ..] = *bytes else { return Ok(None) };
    if b0 & 0x70 != 0 || b1 & 0x80 == 0 {
        return Err(());
    }
    let (len, at) = match b1 & 0x7f {
        126 => match bytes.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        // RFC 6455 5.2: the most significant bit of a 64-bit length is 0. Past it, the header's
        // size plus the length could overflow (found by fuzzing, docs/fuzzing.md).
        127 => match bytes.get(2..10) {
            Some(b) => match u64::from_be_bytes(b.try_into().map_err(|_| ())?) {
                len if len >> 63 == 0 => (len, 10),
                _ => return Err(()),
            },
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let Some(mask) = bytes.get(at..at + 4) else { return Ok(None) };
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        len,
        size: at + 4,
        mask: mask.try_into().map_err(|_| ())?,
    }))
}

/// The frame again, its payload's CONNECT query dropped; `None` when there is none.
fn rewritten(header: &Header, masked: &[u8]) -> Option<Vec<u8>> {
    let unmask = |data: &[u8]| -> Vec<u8> { data.iter().enumerate().map(|(i, b)| b ^ header.mask[i % 4]).collect() };
    let payload = unmask(masked);
    let packet = payload.strip_prefix(b"40/")?;
    let ns_end = packet.iter().position(|&b| b == b',').unwrap_or(packet.len());
    let query = packet[..ns_end].iter().position(|&b| b == b'?')?;
    let mut fixed = b"40/".to_vec();
    fixed.extend_from_slice(&packet[..query]);
    fixed.extend_from_slice(&packet[ns_end..]);
    let mut frame = vec![0x81];
    match fixed.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).ok()?.to_be_bytes());
        }
    }
    frame.extend_from_slice(&header.mask);
    frame.extend(unmask(&fixed));
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// Feeds `input` in chunks of `step` bytes.
    fn filter(input: &[u8], step: usize) -> Vec<u8> {
        let mut f = ConnectFilter::default();
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            f.feed(chunk, &mut out);
        }
        out
    }

    #[test]
    fn connect_queries_are_dropped_in_frames_read_in_any_pieces() {
        let mut input = frame(true, 1, b"40/workflow?token=a.b.c&x=1,");
        input.extend(frame(true, 1, b"42/workflow,[\"subscribe\",{}]"));
        input.extend(frame(true, 1, b"40/ws?t=1"));
        let mut expected = frame(true, 1, b"40/workflow,");
        expected.extend(frame(true, 1, b"42/workflow,[\"subscribe\",{}]"));
        expected.extend(frame(true, 1, b"40/ws"));
        for step in [1, 2, 3, 7, 64, input.len()] {
            assert_eq!(filter(&input, step), expected, "read {step} bytes at a time");
        }
    }

    #[test]
    fn everything_else_passes_as_it_came() {
        let long_connect = format!("40/w?{}", "x".repeat(MAX_FRAME));
        let mut input = frame(true, 1, b"40/workflow,{\"token\":\"no query\"}");
        input.extend(frame(true, 2, b"40/workflow?binary"));
        input.extend(frame(false, 1, b"40/workflow?fragment"));
        input.extend(frame(true, 0, b"rest"));
        input.extend(frame(true, 9, b"ping"));
        input.extend(frame(true, 1, long_connect.as_bytes()));
        input.extend(frame(true, 1, &vec![b'y'; 70_000]));
        for step in [1, 5, 1000, input.len()] {
            assert_eq!(filter(&input, step), input, "read {step} bytes at a time");
        }
    }

    #[test]
    fn a_length_with_its_top_bit_set_turns_the_filter_off() {
        // A text frame claiming 2^64 - 1 bytes: its header's size plus that length used to wrap
        // to a small frame, held and cut before its own header's end (a panic).
        let mut input = vec![0x81, 0x80 | 127];
        input.extend_from_slice(&u64::MAX.to_be_bytes());
        input.extend_from_slice(&[1, 2, 3, 4]);
        input.extend(frame(true, 1, b"40/w?t=1,"));
        for step in [1, 3, input.len()] {
            assert_eq!(filter(&input, step), input, "read {step} bytes at a time");
        }
    }

    #[test]
    fn a_stream_that_is_not_client_frames_turns_the_filter_off() {
        // Unmasked, as no client may send: from there on nothing is touched.
        let mut input = b"\x81\x05hello".to_vec();
        input.extend(frame(true, 1, b"40/w?t=1,"));
        assert_eq!(filter(&input, 3), input);
    }
}
