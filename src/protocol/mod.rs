//! The wire front end: frames ⇄ methods, the connection and channel state
//! machines, authentication, flow control and write batching.
//!
//! `frame` and `codec` do no I/O and hold no broker state; `connection` is
//! the only place that touches a socket.

mod channel;
pub mod codec;
pub mod connection;
pub mod frame;

/// Runs `data` through the frame splitter and the decoders a peer's bytes
/// reach (methods, content headers, properties), as the fuzz target and the
/// randomized test do. Returns how many frames were split. Never panics.
pub fn fuzz_input(data: &[u8]) -> usize {
    let mut buf = bytes::BytesMut::from(data);
    let mut frames = 0;
    // A small frame_max makes the size check reachable with short inputs.
    for frame_max in [4096u32, 131072] {
        buf.clear();
        buf.extend_from_slice(data);
        while let Ok(Some(f)) = frame::split_frame(&mut buf, frame_max) {
            frames += 1;
            match f.kind {
                frame::FrameKind::Method => {
                    let _ = codec::decode_method(&f.payload);
                }
                frame::FrameKind::Header => {
                    if let Some(h) = codec::decode_content_header(&f.payload) {
                        let _ = amq_protocol::protocol::basic::parse_properties(&h.properties[..]);
                        // The no-decode scan every publish runs, and what a
                        // Message derives from it (delivery mode, priority,
                        // expiration).
                        let _ = crate::broker::message::PropertyScan::new(&h.properties);
                        let _ = crate::broker::message::Message::new(
                            bytes::Bytes::new(),
                            bytes::Bytes::new(),
                            h.properties.clone(),
                            bytes::Bytes::new(),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    // Method payloads without framing reach the decoder more directly.
    let payload = bytes::Bytes::copy_from_slice(data);
    let _ = codec::decode_method(&payload);
    frames
}
