//! The frame splitter: cuts complete AMQP frames out of a read buffer.
//!
//! No I/O here. "Need more bytes" is `Ok(None)`, never an error. The size
//! prefix is checked against the negotiated frame_max as soon as the 7-byte
//! frame header is readable, *before* the payload is buffered, so a peer cannot
//! make us allocate a frame larger than we agreed to (amq-protocol's own parser
//! never checks frame_max).

use bytes::{Buf, Bytes, BytesMut};

pub(crate) use crate::wire::frame::{
    FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_OVERHEAD,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    Method,
    Header,
    Body,
    Heartbeat,
}

/// One frame, its payload a zero-copy slice of the read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: FrameKind,
    pub channel: u16,
    pub payload: Bytes,
}

/// Why the byte stream cannot be framed. Every case closes the connection
/// with 501 FRAME_ERROR; `Display` is RabbitMQ's reply text after the
/// `FRAME_ERROR - ` prefix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FrameError {
    /// The frame type octet as received.
    pub frame_type: u8,
    /// The payload (or its first 16 octets) as RabbitMQ quotes it.
    pub payload: Bytes,
    pub reason: FrameErrorReason,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameErrorReason {
    /// Payload size and the largest payload frame_max allows.
    TooLarge {
        size: u64,
        max: u64,
    },
    BadFrameEnd(u8),
    UnknownType,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let which = if self.payload.len() > 16 { "first" } else { "all" };
        let snippet = &self.payload[..self.payload.len().min(16)];
        write!(f, "type {}, {which} octets = {}: ", self.frame_type, erlang_binary(snippet))?;
        match self.reason {
            FrameErrorReason::TooLarge { size, max } => write!(f, "{{frame_too_large,{size},{max}}}"),
            FrameErrorReason::BadFrameEnd(b) => write!(f, "{{invalid_frame_end_marker,{b}}}"),
            FrameErrorReason::UnknownType => write!(f, "unknown_frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Formats bytes the way Erlang's `~p` prints a binary, as RabbitMQ's
/// error texts quote them: `<<"text">>` when printable, else `<<0,20,255>>`.
pub(crate) fn erlang_binary(bytes: &[u8]) -> String {
    let printable = !bytes.is_empty() && bytes.iter().all(|&b| matches!(b, 32..=126 | 160..=255 | 8..=13 | 27));
    if !printable {
        let parts: Vec<String> = bytes.iter().map(|b| b.to_string()).collect();
        return format!("<<{}>>", parts.join(","));
    }
    let mut s = String::from("<<\"");
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            8 => s.push_str("\\b"),
            11 => s.push_str("\\v"),
            12 => s.push_str("\\f"),
            27 => s.push_str("\\e"),
            _ => s.push(b as char),
        }
    }
    s.push_str("\">>");
    s
}

/// Cuts the next complete frame from `buf`, or returns `Ok(None)` when more
/// bytes are needed. `frame_max` is the whole frame's size limit including
/// header and frame-end octet, as the spec defines it. Checks run in
/// RabbitMQ's order: size (before buffering), end marker, then type.
pub(crate) fn split_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, FrameError> {
    if buf.len() < FRAME_HEADER_SIZE {
        return Ok(None);
    }
    let frame_type = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let max_payload = (frame_max as u64).saturating_sub(FRAME_OVERHEAD as u64);
    if size as u64 > max_payload {
        return Err(FrameError {
            frame_type,
            payload: Bytes::new(),
            reason: FrameErrorReason::TooLarge { size: size as u64, max: max_payload },
        });
    }
    let total = size + FRAME_OVERHEAD;
    if buf.len() < total {
        // Reserve now so the next read brings the rest in one go.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let end = buf[total - 1];
    let payload_of = |buf: &BytesMut| Bytes::copy_from_slice(&buf[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + size]);
    if end != FRAME_END {
        return Err(FrameError { frame_type, payload: payload_of(buf), reason: FrameErrorReason::BadFrameEnd(end) });
    }
    let kind = match frame_type {
        FRAME_METHOD => FrameKind::Method,
        FRAME_HEADER => FrameKind::Header,
        FRAME_BODY => FrameKind::Body,
        FRAME_HEARTBEAT => FrameKind::Heartbeat,
        _ => return Err(FrameError { frame_type, payload: payload_of(buf), reason: FrameErrorReason::UnknownType }),
    };
    buf.advance(FRAME_HEADER_SIZE);
    let payload = buf.split_to(size).freeze();
    buf.advance(1);
    Ok(Some(Frame { kind, channel, payload }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(&channel.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v.push(FRAME_END);
        v
    }

    #[test]
    fn splits_back_to_back_frames() {
        let mut stream = frame_bytes(FRAME_METHOD, 1, b"abc");
        stream.extend(frame_bytes(FRAME_HEARTBEAT, 0, b""));
        let mut buf = BytesMut::from(&stream[..]);
        let f = split_frame(&mut buf, 4096).unwrap().unwrap();
        assert_eq!((f.kind, f.channel, &f.payload[..]), (FrameKind::Method, 1, &b"abc"[..]));
        let f = split_frame(&mut buf, 4096).unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Heartbeat);
        assert!(buf.is_empty());
        assert_eq!(split_frame(&mut buf, 4096), Ok(None));
    }

    #[test]
    fn every_prefix_needs_more() {
        let stream = frame_bytes(FRAME_BODY, 7, b"hello world");
        for cut in 0..stream.len() {
            let mut buf = BytesMut::from(&stream[..cut]);
            assert_eq!(split_frame(&mut buf, 4096), Ok(None), "prefix {cut}");
        }
    }

    #[test]
    fn oversize_is_refused_before_the_payload_arrives() {
        let mut buf = BytesMut::from(&[FRAME_BODY, 0, 1, 0xff, 0xff, 0xff, 0xff][..]);
        let err = split_frame(&mut buf, 131072).unwrap_err();
        assert_eq!(err.to_string(), "type 3, all octets = <<>>: {frame_too_large,4294967295,131064}");
        let ok = frame_bytes(FRAME_BODY, 1, &[0u8; 4088]);
        assert!(split_frame(&mut BytesMut::from(&ok[..]), 4096).unwrap().is_some());
        let big = frame_bytes(FRAME_BODY, 1, &[0u8; 4089]);
        assert!(split_frame(&mut BytesMut::from(&big[..]), 4096).is_err());
    }

    #[test]
    fn bad_end_and_unknown_type() {
        let mut bad = frame_bytes(FRAME_METHOD, 1, &[0, 20, 0, 10, 0]);
        *bad.last_mut().unwrap() = 0;
        let err = split_frame(&mut BytesMut::from(&bad[..]), 4096).unwrap_err();
        assert_eq!(err.to_string(), "type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}");
        let unknown = frame_bytes(7, 1, b"zz");
        let err = split_frame(&mut BytesMut::from(&unknown[..]), 4096).unwrap_err();
        assert_eq!(err.to_string(), "type 7, all octets = <<\"zz\">>: unknown_frame");
        let long = frame_bytes(7, 1, &[1u8; 20]);
        let err = split_frame(&mut BytesMut::from(&long[..]), 4096).unwrap_err();
        assert!(err.to_string().starts_with("type 7, first octets = <<1,1,"));
    }
}
