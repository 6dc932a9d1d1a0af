//! Raw AMQP byte layouts that more than one layer needs: the frame and
//! method numbers ([`frame`]), field tables and arrays ([`table`]) and the
//! basic class's content-header property list ([`properties`]); and the
//! percent-decoding of names ([`percent`]) that `broker` (OAuth 2.0 scopes)
//! and `http` (binding keys) both read.
//!
//! A leaf module: it imports nothing from `broker/`, `protocol/` or `store/`,
//! does no I/O and holds no state. Everything here works on the bytes a peer
//! sent, so nothing here recurses (DESIGN.md, safety rule 1): nested tables
//! are walked with an explicit stack, and edits copy every byte they do not
//! change, so key order, duplicate keys and tables nested far deeper than
//! anything could decode survive a rewrite exactly as the publisher sent them
//! (RabbitMQ delivers headers nested 100,000 deep byte for byte).
//!
//! Decoding into amq-protocol's `AMQPValue` (whose parser, `Drop`, `Clone`,
//! `Debug` and `PartialEq` all recurse) happens only through
//! [`table::decode_table`] / [`table::decode_value`], which refuse anything
//! nested deeper than [`table::MAX_DECODE_DEPTH`].

pub(crate) mod frame;
pub(crate) mod percent;
pub(crate) mod properties;
pub(crate) mod table;
