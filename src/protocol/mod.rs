//! The wire front end: frames ⇄ methods, the connection and channel state
//! machines, authentication, flow control and write batching.
//!
//! `frame` and `codec` do no I/O and hold no broker state; `connection` is
//! the only place that touches a socket.

pub mod codec;
pub mod connection;
pub mod frame;
mod channel;
