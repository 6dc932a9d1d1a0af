//! Socket-free tests of the connection state machine: bytes in through
//! [`super::harness::Harness`], frames out, every assertion on what a client
//! would observe (codes, reply texts, class and method ids, frame order).
//! Timers (heartbeats, handshake and close deadlines) are not driven by the
//! harness and are tested with the manual clock elsewhere.
//!
//! Expected output is what the broker sends today where that matches
//! RabbitMQ 3.10.8; where it does not, `rabbitmq_differences` holds an
//! ignored test asserting RabbitMQ's answer.

mod support;

mod basic;
mod channels;
mod closing;
mod confirm_tx;
mod content;
mod exchange_queue;
mod framing;
mod handshake;
mod rabbitmq_differences;
