//! The management HTTP API: RabbitMQ's `rabbitmq_management` paths, JSON
//! shapes, status codes and errors, so rabbitmqadmin, `warren ctl`, test
//! helpers and the web UI work unchanged.
//!
//! A second front end over the same broker operations the AMQP front end
//! uses (`Vhost::queue_declare`, `Vhost::publish`, `Queue::get`, ...), never
//! a path around them: what a client cannot do over AMQP, it cannot do here.
//!
//! By job: `auth` checks basic auth and tags; `error` renders RabbitMQ's
//! error bodies; `paging` sorts, filters and pages lists; `views` turns
//! broker objects into RabbitMQ's JSON; `overview`, `admin` (vhosts, users,
//! permissions), `objects` (exchanges, queues, bindings, publish, get),
//! `policies` (policies and operator policies), `limits` (vhost and user limits),
//! `definitions` and `health` hold the handlers; `ui` serves the embedded
//! web UI.

mod admin;
mod auth;
mod clock;
mod connections;
mod definitions;
mod error;
mod faults;
mod health;
mod limits;
mod metrics;
mod objects;
mod overview;
mod paging;
mod policies;
mod rates;
mod ui;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::alarms::AlarmSet;
use crate::broker::{Broker, Vhost};
use crate::store::{Outcome, TicketRange};
use crate::Config;
pub(crate) use error::{ApiError, ApiResult};

/// The largest request body (RabbitMQ's `management.http.max_body_size`).
const MAX_BODY: usize = 20 << 20;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) broker: Arc<Broker>,
    pub(crate) config: Arc<Config>,
    pub(crate) alarms: watch::Receiver<AlarmSet>,
    /// The ports this node listens on (AMQP, HTTP, metrics), for
    /// `listeners` and the port-listener health check.
    pub(crate) listeners: Arc<Vec<Listener>>,
    pub(crate) started: Instant,
    /// RabbitMQ's node name, `rabbit@HOST`.
    pub(crate) node: Arc<str>,
    /// The message and byte rates of the last sample.
    pub(crate) rates: Arc<rates::Rates>,
    /// `/api/warren/faults/...` (with `Config::allow_fault_injection`).
    pub(crate) faults: crate::faults::Faults,
}

#[derive(Clone, Debug)]
pub(crate) struct Listener {
    pub(crate) protocol: &'static str,
    pub(crate) addr: SocketAddr,
}

impl Api {
    pub(crate) fn new(
        broker: Arc<Broker>,
        config: Arc<Config>,
        alarms: watch::Receiver<AlarmSet>,
        listeners: Vec<Listener>,
        faults: crate::faults::Faults,
    ) -> Api {
        Api {
            broker,
            config,
            alarms,
            faults,
            listeners: Arc::new(listeners),
            started: Instant::now(),
            node: node_name().into(),
            rates: Arc::default(),
        }
    }

    /// Waits until every definitions change made so far is on disk, so a
    /// 201 or 204 is only sent for a change that survives a crash.
    pub(crate) async fn durable(&self) -> ApiResult<()> {
        let Some(store) = self.broker.store() else { return Ok(()) };
        let t = store.definitions_issued();
        self.written(TicketRange { lo: t, hi: t }).await
    }

    /// Waits for the store to resolve `tickets`: Ok once they are on disk,
    /// RabbitMQ's 500 if a write failed (a full disk).
    pub(crate) async fn written(&self, tickets: TicketRange) -> ApiResult<()> {
        let Some(store) = self.broker.store() else { return Ok(()) };
        let outcome = std::future::poll_fn(|cx| {
            let now = store.progress().outcome(tickets);
            if now != Outcome::Pending {
                return std::task::Poll::Ready(now);
            }
            // Register, then look again: a batch that ended in between is seen.
            store.wake_when_resolved(cx.waker().clone());
            match store.progress().outcome(tickets) {
                Outcome::Pending => std::task::Poll::Pending,
                done => std::task::Poll::Ready(done),
            }
        })
        .await;
        match outcome {
            Outcome::Failed => Err(ApiError::internal(
                "the change could not be written to disk (is it full?); it may be lost on restart",
            )),
            _ => Ok(()),
        }
    }

    /// The vhost of a path, or RabbitMQ's 404.
    pub(crate) fn vhost(&self, name: &str) -> ApiResult<Arc<Vhost>> {
        self.broker.vhost(name).ok_or_else(ApiError::not_found)
    }
}

/// `rabbit@<hostname>`, as RabbitMQ names a node by default.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!("rabbit@{}", if host.is_empty() { "localhost" } else { host })
}

/// A JSON request body. RabbitMQ answers a body that is not JSON with
/// `400 {"error":"bad_request","reason":"not_json"}` whatever the content
/// type says; an empty body reads as `{}`.
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Api> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Api) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| ApiError {
            // 413 for a body past MAX_BODY.
            status: e.status(),
            error: "bad_request",
            reason: e.body_text(),
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| ApiError::bad_request("not_json"))?;
        serde_json::from_value(value).map(Body).map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// Every route, under `/api`, and the UI at `/`.
pub(crate) fn router(api: Api) -> Router {
    let api_routes = Router::new()
        .route("/overview", get(overview::overview))
        .route("/cluster-name", get(overview::cluster_name))
        .route("/whoami", get(overview::whoami))
        .route("/extensions", get(overview::extensions))
        .route("/nodes", get(overview::nodes))
        .route("/nodes/{node}", get(overview::node))
        .route("/vhosts", get(admin::vhosts))
        .route("/vhosts/{vhost}", get(admin::vhost).put(admin::put_vhost).delete(admin::delete_vhost))
        .route("/vhosts/{vhost}/permissions", get(admin::vhost_permissions))
        .route("/vhosts/{vhost}/topic-permissions", get(admin::vhost_topic_permissions))
        .route("/users", get(admin::users))
        .route("/users/without-permissions", get(admin::users_without_permissions))
        .route("/users/bulk-delete", post(admin::bulk_delete_users))
        .route("/users/{user}", get(admin::user).put(admin::put_user).delete(admin::delete_user))
        .route("/users/{user}/permissions", get(admin::user_permissions))
        .route("/users/{user}/topic-permissions", get(admin::user_topic_permissions))
        .route("/permissions", get(admin::permissions))
        .route(
            "/permissions/{vhost}/{user}",
            get(admin::permission).put(admin::put_permission).delete(admin::delete_permission),
        )
        .route("/topic-permissions", get(admin::topic_permissions))
        .route(
            "/topic-permissions/{vhost}/{user}",
            get(admin::topic_permission).put(admin::put_topic_permission).delete(admin::delete_topic_permission),
        )
        .route("/exchanges", get(objects::exchanges))
        .route("/exchanges/{vhost}", get(objects::exchanges_in))
        .route(
            "/exchanges/{vhost}/{name}",
            get(objects::exchange).put(objects::put_exchange).delete(objects::delete_exchange),
        )
        .route("/exchanges/{vhost}/{name}/bindings/source", get(objects::exchange_bindings_source))
        .route("/exchanges/{vhost}/{name}/bindings/destination", get(objects::exchange_bindings_destination))
        .route("/exchanges/{vhost}/{name}/publish", post(objects::publish))
        .route("/queues", get(objects::queues))
        .route("/queues/detailed", get(objects::queues_detailed))
        .route("/queues/{vhost}", get(objects::queues_in))
        .route("/queues/{vhost}/{name}", get(objects::queue).put(objects::put_queue).delete(objects::delete_queue))
        .route("/queues/{vhost}/{name}/bindings", get(objects::queue_bindings))
        .route("/queues/{vhost}/{name}/contents", axum::routing::delete(objects::purge))
        .route("/queues/{vhost}/{name}/get", post(objects::get_messages))
        .route("/queues/{vhost}/{name}/messages", get(objects::peek))
        .route("/connections", get(connections::connections))
        .route("/connections/{name}", get(connections::connection).delete(connections::close))
        .route(
            "/connections/username/{user}",
            get(connections::user_connections).delete(connections::close_user_connections),
        )
        .route("/connections/{name}/channels", get(connections::connection_channels))
        .route("/vhosts/{vhost}/connections", get(connections::vhost_connections))
        .route("/vhosts/{vhost}/channels", get(connections::vhost_channels))
        .route("/channels", get(connections::channels))
        .route("/channels/{name}", get(connections::channel))
        .route("/consumers", get(connections::consumers))
        .route("/consumers/{vhost}", get(connections::consumers_in))
        .route("/bindings", get(objects::bindings))
        .route("/bindings/{vhost}", get(objects::bindings_in))
        .route("/bindings/{vhost}/e/{source}/{kind}/{destination}", get(objects::binding_list).post(objects::bind))
        .route(
            "/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}",
            get(objects::binding).delete(objects::unbind),
        )
        .route("/vhost-limits", get(limits::vhost_limits))
        .route("/vhost-limits/{vhost}", get(limits::vhost_limits_in))
        .route(
            "/vhost-limits/{vhost}/{name}",
            axum::routing::put(limits::put_vhost_limit).delete(limits::delete_vhost_limit),
        )
        .route("/user-limits", get(limits::user_limits))
        .route("/user-limits/{user}", get(limits::user_limits_of))
        .route(
            "/user-limits/{user}/{name}",
            axum::routing::put(limits::put_user_limit).delete(limits::delete_user_limit),
        )
        .route("/policies", get(policies::policies))
        .route("/policies/{vhost}", get(policies::policies_in))
        .route(
            "/policies/{vhost}/{name}",
            get(policies::policy).put(policies::put_policy).delete(policies::delete_policy),
        )
        .route("/operator-policies", get(policies::operator_policies))
        .route("/operator-policies/{vhost}", get(policies::operator_policies_in))
        .route(
            "/operator-policies/{vhost}/{name}",
            get(policies::operator_policy).put(policies::put_operator_policy).delete(policies::delete_operator_policy),
        )
        .route("/definitions", get(definitions::export_all).post(definitions::import_all))
        .route("/definitions/{vhost}", get(definitions::export_vhost).post(definitions::import_vhost))
        .route("/health/checks/alarms", get(health::alarms))
        .route("/health/checks/local-alarms", get(health::alarms))
        .route("/health/checks/virtual-hosts", get(health::virtual_hosts))
        .route("/health/checks/port-listener/{port}", get(health::port_listener))
        .route("/health/checks/protocol-listener/{protocol}", get(health::protocol_listener))
        .route("/health/checks/is-in-service", get(health::is_in_service))
        .route("/health/checks/node-is-quorum-critical", get(health::not_quorum_critical))
        .route("/health/checks/node-is-mirror-sync-critical", get(health::not_quorum_critical))
        .route("/health/checks/certificate-expiration/{within}/{unit}", get(health::certificates))
        .route("/aliveness-test/{vhost}", get(health::aliveness))
        // RabbitMQ's health check before 3.8's /health/checks, which older
        // helpers and compose files still call.
        .route("/warren/clock", get(clock::get_clock).post(clock::advance_clock))
        .route("/warren/faults", get(faults::status))
        .route("/warren/faults/connections/{name}/close", post(faults::close_connection))
        .route("/warren/faults/connections/{name}/drop", post(faults::drop_connection))
        .route("/warren/faults/connections/{name}/channels/{channel}/close", post(faults::close_channel))
        .route("/warren/faults/connections/{name}/block", post(faults::block))
        .route("/warren/faults/connections/{name}/unblock", post(faults::unblock))
        .route("/warren/faults/connections/{name}/latency", post(faults::latency))
        .route("/warren/faults/queues/{vhost}/{queue}/pause", post(faults::pause_queue))
        .route("/warren/faults/queues/{vhost}/{queue}/resume", post(faults::resume_queue))
        .route("/warren/faults/queues/{vhost}/{queue}/nack-publishes", post(faults::nack_publishes))
        .route("/warren/faults/queues/{vhost}/{queue}/cancel-consumers", post(faults::cancel_consumers))
        .route("/warren/faults/restart", post(faults::restart))
        .route("/warren/faults/alarms/{alarm}/raise", post(faults::raise_alarm))
        .route("/warren/faults/alarms/{alarm}/clear", post(faults::clear_alarm))
        .route("/healthchecks/node", get(health::is_in_service))
        .route("/healthchecks/node/{node}", get(health::node_check))
        .route("/{*rest}", get(not_found).put(not_found).post(not_found).delete(not_found))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api", api_routes)
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .fallback(not_found)
        .with_state(api)
        .layer(axum::middleware::from_fn(no_store))
        // Definitions of thousands of queues exceed axum's 2 MB default;
        // RabbitMQ's management.http.max_body_size is 20 MiB.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// API answers change from one call to the next: no cache may keep them
/// (RabbitMQ sends the same header).
async fn no_store(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let is_api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    if is_api {
        res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-cache"));
    }
    res
}

/// Serves the API on `listener` (and the metrics on `metrics`), and
/// samples the rates, until `stop` flips.
/// A socket the management API or Prometheus is served on: plain HTTP,
/// or HTTPS with `tls`.
pub(crate) struct HttpListener {
    pub(crate) tcp: TcpListener,
    pub(crate) tls: Option<Arc<crate::tls::TlsEndpoint>>,
}

pub(crate) async fn serve(
    management: Vec<HttpListener>,
    metrics: Vec<HttpListener>,
    api: Api,
    stop: watch::Receiver<bool>,
) {
    tokio::spawn(rates::run(Arc::clone(&api.rates), Arc::clone(&api.broker), stop.clone()));
    for m in metrics {
        tokio::spawn(serve_router(m, metrics::router(api.clone()), stop.clone()));
    }
    for l in management {
        tokio::spawn(serve_router(l, router(api.clone()), stop.clone()));
    }
}

async fn serve_router(listener: HttpListener, router: Router, mut stop: watch::Receiver<bool>) {
    use axum::serve::ListenerExt;
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut stop_tls = stop.clone();
    let shutdown = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                return;
            }
        }
    };
    let served = match listener.tls {
        None => axum::serve(listener.tcp, app).with_graceful_shutdown(shutdown).await,
        Some(tls) => {
            let local = listener.tcp.local_addr();
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            tokio::spawn(async move {
                tokio::select! {
                    _ = tls_handshakes(listener.tcp, tls, tx) => {}
                    _ = stop_tls.changed() => {}
                }
            });
            let listener = TlsListener { handshaken: rx, local };
            // `tap_io` only so that axum's ConnectInfo<SocketAddr> applies
            // to a listener of ours.
            axum::serve(listener.tap_io(|_| {}), app).with_graceful_shutdown(shutdown).await
        }
    };
    if let Err(e) = served {
        tracing::error!("HTTP listener stopped: {e}");
    }
}

/// How long an HTTPS client has to finish its TLS handshake.
const HTTPS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts TCP and runs each TLS handshake in a task of its own (a stalled
/// one must not hold up the next client), handing finished ones to axum.
async fn tls_handshakes(
    tcp: TcpListener,
    tls: Arc<crate::tls::TlsEndpoint>,
    done: tokio::sync::mpsc::Sender<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("HTTPS accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = tls.acceptor();
        let done = done.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HTTPS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let _ = done.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "HTTPS: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "HTTPS: TLS handshake timed out"),
            }
        });
    }
}

struct TlsListener {
    handshaken: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: std::io::Result<SocketAddr>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(accepted) => accepted,
            // The acceptor stopped (shutdown): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// `PUT` on an object that exists answers 204, on a new one 201.
pub(crate) fn created(new: bool) -> axum::http::StatusCode {
    if new {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::NO_CONTENT
    }
}
