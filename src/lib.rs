//! Warren: an AMQP 0-9-1 message broker that RabbitMQ clients use unchanged.
//!
//! Module map:
//! - [`protocol`]: the wire front end. `frame` splits frames out of a buffer,
//!   `codec` decodes methods and encodes the hot frames by hand;
//!   `connection` is the sans-IO state machine of one client (handshake,
//!   channels, method handlers by class, content assembly, confirms,
//!   deliveries, write batching, heartbeats and deadlines on the broker's
//!   clock); `driver` runs it over a socket, `harness` over byte literals.
//! - [`broker`]: the routing core and its rules — vhosts (registry, declare,
//!   route, settle, definitions), basic.publish's rules (`Vhost::publish`),
//!   exchanges, bindings, queues and their deadlines, consumers, permissions,
//!   the registry of open connections and channels and the message counters
//!   the management API reads. No sockets, no frame layouts, nothing from
//!   `protocol`.
//! - `http` (crate-private): the second front end, RabbitMQ's management
//!   HTTP API on axum (auth and tags, paging, RabbitMQ's JSON and errors)
//!   and the embedded web UI, over the same broker operations as `protocol`.
//! - [`server`]: the listeners (AMQP, management), accept loop and shutdown.
//! - [`rate_limit`]: the token bucket that paces the AMQP accept loop.
//! - [`store`]: the data directory: the definitions snapshot and journal,
//!   the queue logs and page files, the writer thread. Below the core: it
//!   imports nothing from `broker` or `protocol`, and wakes waiters through
//!   a `std::task::Waker`.
//! - `wire` (crate-private): raw byte layouts shared by the layers: frame and
//!   method numbers, field tables (an iterative walker, one-level iteration,
//!   edits that keep every other byte), the content-header property list
//!   and percent-decoding of names. A leaf: no imports from the other
//!   modules, no recursion on a peer's bytes.
//! - [`clock`]: the one `Clock` every timer and TTL reads (real, or manual in
//!   tests); [`ids`]: `ChannelId`, `DeliveryTag`, `ConnectionId`, … newtypes.
//! - [`message`]: a published message (`Message`, `QueuedMessage`) and the
//!   property reads that build one. A leaf shared by `broker` and `store`.
//! - [`config`]: settings shared by the binary and embedders;
//!   [`fixture`]: `Server::builder()` and the inspection helpers of tests;
//!   [`faults`]: fault injection (`Server::faults`, `/api/warren/faults`).
//! - [`ctl`]: `warren ctl` and the rabbitmqctl / rabbitmq-diagnostics /
//!   rabbitmq-plugins / rabbitmqadmin personalities, over the management HTTP API.
//! - [`perf`]: `warren perf`, a load generator with its own minimal client
//!   that drives any AMQP 0-9-1 broker by URI.
//!
//! One message's path through these rooms, and where a change goes, are in
//! docs/ARCHITECTURE.md.
//!
//! Embedding (for tests): [`Server::builder`] makes a broker in one line,
//! and a manual clock tests an hour-long TTL in milliseconds:
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use lapin::{options::*, types::*, BasicProperties, Connection, ConnectionProperties};
//!
//! let server = warren::Server::builder().in_memory().user("u", "p").vhost("v").clock_manual().start().await?;
//! let uri = format!("amqp://u:p@{}/v", server.local_addr());
//! let conn = Connection::connect(&uri, ConnectionProperties::default()).await?;
//! let ch = conn.create_channel().await?;
//! let mut args = FieldTable::default();
//! args.insert("x-message-ttl".into(), AMQPValue::LongUInt(3_600_000));
//! ch.queue_declare("q".into(), QueueDeclareOptions::default(), args).await?;
//! ch.basic_publish("".into(), "q".into(), BasicPublishOptions::default(), b"an hour", BasicProperties::default())
//!     .await?;
//! server.wait_until_messages("v", "q", 1, Duration::from_secs(5)).await?;
//!
//! server.advance(Duration::from_secs(3600)); // an hour of broker time, at once
//! assert_eq!(server.queue("v", "q")?.message_count(), 0);
//! conn.close(200, "bye".into()).await?;
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

pub mod broker;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod faults;
pub mod fixture;
pub(crate) mod http;
pub mod ids;
pub mod message;
pub mod perf;
pub mod protocol;
pub mod rate_limit;
pub mod server;
pub mod store;
pub mod tls;
pub(crate) mod wire;

pub use config::Config;
pub use server::Server;
