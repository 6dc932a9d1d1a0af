//! Warren: an AMQP 0-9-1 message broker that RabbitMQ clients use unchanged.
//!
//! Module map:
//! - [`protocol`]: the wire front end. `frame` splits frames out of a buffer,
//!   `codec` decodes methods and encodes the hot frames by hand;
//!   `connection` is the sans-IO state machine of one client (handshake,
//!   channels, method handlers by class, content assembly, confirms,
//!   deliveries, write batching, heartbeats and deadlines on the broker's
//!   clock); `driver` runs it over a socket, `harness` over byte literals.
//! - [`broker`]: the routing core — vhosts, exchanges (direct, fanout, topic,
//!   headers), bindings, queues, consumers. No sockets, no frame layouts.
//! - [`server`]: the listener, accept loop and shutdown.
//! - [`store`]: the data directory: definitions.json and the queue logs.
//! - [`wire`]: raw byte layouts shared by the layers: frame and method
//!   numbers, field tables (an iterative walker, one-level iteration, edits
//!   that keep every other byte) and the content-header property list. A leaf: no imports from
//!   the other modules, no recursion on a peer's bytes.
//! - [`message`]: a published message (`Message`, `QueuedMessage`) and the
//!   property reads that build one. A leaf shared by `broker` and `store`.
//! - [`config`]: settings shared by the binary and embedders.
//! - [`ctl`]: `warren ctl` and the rabbitmqctl / rabbitmq-diagnostics /
//!   rabbitmq-plugins / rabbitmqadmin personalities, over the management HTTP API.
//! - [`perf`]: `warren perf`, a load generator with its own minimal client
//!   that drives any AMQP 0-9-1 broker by URI.
//!
//! Embedding (for tests):
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = warren::Server::start(warren::Config::ephemeral()).await?;
//! println!("connect to {}", server.amqp_uri());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

pub mod broker;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod ids;
pub mod message;
pub mod perf;
pub mod protocol;
pub mod server;
pub mod store;
pub(crate) mod wire;

pub use config::Config;
pub use server::Server;
