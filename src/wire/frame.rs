//! The numbers of the AMQP 0-9-1 frame layout and of the methods the hand
//! written codecs name: shared by the broker's codec (`protocol::frame`,
//! `protocol::codec`) and the load tool's (`perf::wire`), which must not
//! depend on the broker.

pub(crate) const FRAME_METHOD: u8 = 1;
pub(crate) const FRAME_HEADER: u8 = 2;
pub(crate) const FRAME_BODY: u8 = 3;
pub(crate) const FRAME_HEARTBEAT: u8 = 8;
pub(crate) const FRAME_END: u8 = 0xCE;
/// type (1) + channel (2) + size (4)
pub(crate) const FRAME_HEADER_SIZE: usize = 7;
/// Header plus the frame-end octet: what a frame costs beyond its payload.
pub(crate) const FRAME_OVERHEAD: usize = FRAME_HEADER_SIZE + 1;

pub(crate) const CLASS_CONNECTION: u16 = 10;
pub(crate) const CLASS_CHANNEL: u16 = 20;
pub(crate) const CLASS_BASIC: u16 = 60;

pub(crate) const METHOD_BASIC_QOS: u16 = 10;
pub(crate) const METHOD_BASIC_CANCEL: u16 = 30;
pub(crate) const METHOD_BASIC_PUBLISH: u16 = 40;
pub(crate) const METHOD_BASIC_RETURN: u16 = 50;
pub(crate) const METHOD_BASIC_DELIVER: u16 = 60;
pub(crate) const METHOD_BASIC_GET_OK: u16 = 71;
pub(crate) const METHOD_BASIC_ACK: u16 = 80;
pub(crate) const METHOD_BASIC_REJECT: u16 = 90;
pub(crate) const METHOD_BASIC_NACK: u16 = 120;
/// connection.close and channel.close share the method id.
pub(crate) const METHOD_CLOSE: u16 = 40;
pub(crate) const METHOD_CONNECTION_CLOSE: u16 = 50;
pub(crate) const METHOD_CONNECTION_BLOCKED: u16 = 60;
pub(crate) const METHOD_CONNECTION_UNBLOCKED: u16 = 61;
