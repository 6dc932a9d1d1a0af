//! The frame splitter: cuts complete AMQP frames out of a read buffer.
//!
//! No I/O here. "Need more bytes" is `Ok(None)`, never an error. The size
//! prefix is checked against the negotiated frame_max as soon as the 7-byte
//! frame header is readable, *before* the payload is buffered, so a peer cannot
//! make us allocate a frame larger than we agreed to (amq-protocol's own parser
//! never checks frame_max).

use bytes::{Buf, Bytes, BytesMut};

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// type (1) + channel (2) + size (4)
pub const FRAME_HEADER_SIZE: usize = 7;
/// Header plus the frame-end octet: what a frame costs beyond its payload.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_SIZE + 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Method,
    Header,
    Body,
    Heartbeat,
}

/// One frame, its payload a zero-copy slice of the read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub channel: u16,
    pub payload: Bytes,
}

/// Why the byte stream cannot be framed. Every variant closes the connection
/// with 501 FRAME_ERROR.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame_too_large: frame size {size} exceeds the negotiated maximum {max}")]
    TooLarge { size: u64, max: u32 },
    #[error("bad frame end marker 0x{0:02x}, expected 0xce")]
    BadFrameEnd(u8),
    #[error("unknown frame type {0}")]
    UnknownType(u8),
}

/// Cuts the next complete frame from `buf`, or returns `Ok(None)` when more
/// bytes are needed. `frame_max` is the whole frame's size limit including
/// header and frame-end octet, as the spec defines it.
pub fn split_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, FrameError> {
    if buf.len() < FRAME_HEADER_SIZE {
        return Ok(None);
    }
    let kind = match buf[0] {
        FRAME_METHOD => FrameKind::Method,
        FRAME_HEADER => FrameKind::Header,
        FRAME_BODY => FrameKind::Body,
        FRAME_HEARTBEAT => FrameKind::Heartbeat,
        other => return Err(FrameError::UnknownType(other)),
    };
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let total = size as u64 + FRAME_OVERHEAD as u64;
    if total > frame_max as u64 {
        return Err(FrameError::TooLarge { size: total, max: frame_max });
    }
    let total = total as usize;
    if buf.len() < total {
        // Reserve now so the next read brings the rest in one go.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let end = buf[total - 1];
    if end != FRAME_END {
        return Err(FrameError::BadFrameEnd(end));
    }
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
        assert!(matches!(split_frame(&mut buf, 131072), Err(FrameError::TooLarge { .. })));
        let ok = frame_bytes(FRAME_BODY, 1, &[0u8; 4088]);
        assert!(split_frame(&mut BytesMut::from(&ok[..]), 4096).unwrap().is_some());
        let big = frame_bytes(FRAME_BODY, 1, &[0u8; 4089]);
        assert!(split_frame(&mut BytesMut::from(&big[..]), 4096).is_err());
    }

    #[test]
    fn bad_end_and_unknown_type() {
        let mut bad = frame_bytes(FRAME_METHOD, 1, b"x");
        *bad.last_mut().unwrap() = 0;
        assert_eq!(split_frame(&mut BytesMut::from(&bad[..]), 4096), Err(FrameError::BadFrameEnd(0)));
        let unknown = frame_bytes(9, 1, b"x");
        assert_eq!(split_frame(&mut BytesMut::from(&unknown[..]), 4096), Err(FrameError::UnknownType(9)));
    }
}
