//! `warren perf` against an in-process broker: a short bounded run must move
//! every message it publishes and clean up after itself.

use warren::perf::{ExchangeType, PerfArgs};

async fn run(server: &warren::Server, args: PerfArgs) -> warren::perf::Summary {
    let args = PerfArgs { uri: server.amqp_uri(), quiet: true, drain_timeout: 3.0, ..args };
    let s = warren::perf::run(args).await.expect("perf run");
    assert_eq!(s.errors, 0, "errors: {:?}", s.error_messages);
    assert!(s.publish_rate > 0.0 && s.consume_rate > 0.0, "{}", s.to_text());
    assert!(s.sent > 0);
    assert_eq!(s.received, s.expected, "{}", s.to_text());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirms_and_manual_ack_move_every_message() {
    let server = warren::Server::start(warren::Config::ephemeral()).await.unwrap();
    let s = run(
        &server,
        PerfArgs {
            duration: 1.0,
            confirm: 100,
            prefetch: 100,
            queue_prefix: Some("perf-test-a".into()),
            ..PerfArgs::default()
        },
    )
    .await;
    assert_eq!(s.received, s.sent);
    assert_eq!(s.confirmed, s.sent);
    assert!(s.latency.is_some_and(|l| l.samples > 0 && l.p50_us <= l.p99_us));
    let json = s.to_json();
    assert!(json.starts_with('{') && json.ends_with('}') && json.contains("\"errors\":0"), "{json}");
    // Everything the run declared is gone.
    let vhost = server.broker().vhost("/").unwrap();
    assert!(vhost.queue("perf-test-a-q0").is_err() && vhost.exchange("perf-test-a-x").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_reaches_every_queue_with_autoack() {
    let server = warren::Server::start(warren::Config::ephemeral()).await.unwrap();
    let s = run(
        &server,
        PerfArgs {
            duration: 0.5,
            producers: 1,
            consumers: 3,
            queues: 3,
            exchange_type: ExchangeType::Fanout,
            autoack: true,
            rate: 2000.0,
            queue_prefix: Some("perf-test-b".into()),
            ..PerfArgs::default()
        },
    )
    .await;
    assert_eq!(s.received, 3 * s.sent);
    assert!(s.sent < 2000, "the rate limit held: {}", s.sent);
}
