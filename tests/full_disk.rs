//! A full disk, for real: the data directory on a small tmpfs that fills up.
//!
//! - With no disk alarm (`--disk-free-limit 0`), writes fail with ENOSPC:
//!   every publish is either confirmed and survives a crash, or nacked; a
//!   durable declare either gets its ok and survives, or fails; the failure
//!   is logged once, not once per message; after space returns, publishing
//!   works again.
//! - With the alarm, publishers are blocked (`connection.blocked`, "low on
//!   disk") before the disk is full, and unblocked once space returns.
//!
//! Needs root (mount); CI runs as root. Everything is bounded in time and
//! unmounted on the way out, even on failure.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

mod process;

/// A tmpfs mounted for one test, unmounted and removed on drop.
struct Tmpfs {
    dir: PathBuf,
}

/// Unmounts what earlier runs left when they were killed (by a timeout,
/// say): mounts of ours whose process is gone.
fn sweep_dead_mounts() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    for line in mounts.lines() {
        let Some(mountpoint) = line.split(' ').nth(1) else { continue };
        let Some(name) = Path::new(mountpoint).file_name().and_then(|n| n.to_str()) else { continue };
        let Some(pid) = name.strip_prefix("warren-full-disk-").and_then(|rest| rest.rsplit('-').next()) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("umount").arg("-l").arg(mountpoint).status();
            let _ = std::fs::remove_dir_all(mountpoint);
        }
    }
}

impl Tmpfs {
    fn new(tag: &str, size: &str) -> Tmpfs {
        sweep_dead_mounts();
        let dir = std::env::temp_dir().join(format!("warren-full-disk-{tag}-{}", std::process::id()));
        let _ = Command::new("umount").arg("-l").arg(&dir).stderr(std::process::Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("running mount");
        assert!(st.success(), "mount -t tmpfs failed: this test needs root (CI runs as root)");
        Tmpfs { dir }
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("running mount");
        assert!(st.success(), "remounting the tmpfs failed");
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(uri: &str) -> Connection {
    tokio::time::timeout(Duration::from_secs(5), Connection::connect(uri, ConnectionProperties::default()))
        .await
        .expect("connect timed out")
        .expect("connect")
}

const QUEUE: &str = "full-disk";

/// Publishes persistent messages in confirmed windows until `stop` says so
/// or a window's confirms do not come (the broker stopped reading us).
/// Returns (acked, nacked) message numbers.
async fn publish_until(
    ch: &lapin::Channel,
    from: u32,
    body_size: usize,
    deadline: Instant,
    mut stop: impl FnMut(usize, usize) -> bool,
) -> (Vec<u32>, Vec<u32>) {
    let props = BasicProperties::default().with_delivery_mode(2);
    let (mut acked, mut nacked) = (Vec::new(), Vec::new());
    let mut n = from;
    while Instant::now() < deadline && !stop(acked.len(), nacked.len()) {
        let mut window = Vec::new();
        let mut stalled = false;
        for _ in 0..50 {
            let mut body = n.to_be_bytes().to_vec();
            body.resize(body_size, b'x');
            let publish =
                ch.basic_publish("".into(), QUEUE.into(), BasicPublishOptions::default(), &body, props.clone());
            match tokio::time::timeout(Duration::from_secs(3), publish).await {
                Ok(r) => window.push((n, r.expect("publish"))),
                // The broker stopped reading us (blocked): collect what
                // was sent, then stop.
                Err(_) => {
                    stalled = true;
                    break;
                }
            }
            n += 1;
        }
        for (id, confirm) in window {
            match tokio::time::timeout(Duration::from_secs(3), confirm).await {
                Ok(Ok(c)) if c.is_ack() => acked.push(id),
                Ok(Ok(_)) => nacked.push(id),
                Ok(Err(e)) => panic!("publish {id} failed: {e}"),
                // No confirm: the broker never read it (blocked).
                Err(_) => stalled = true,
            }
        }
        if stalled {
            break;
        }
    }
    (acked, nacked)
}

/// Every message number left in the queue.
async fn drain(uri: &str) -> HashSet<u32> {
    let conn = connect(uri).await;
    let ch = conn.create_channel().await.unwrap();
    let mut got = HashSet::new();
    loop {
        match ch.basic_get(QUEUE.into(), BasicGetOptions { no_ack: true }).await.unwrap() {
            Some(m) => {
                got.insert(u32::from_be_bytes(m.delivery.data[..4].try_into().unwrap()));
            }
            None => return got,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirms_and_declares_are_never_lies_on_a_full_disk() {
    let disk = Tmpfs::new("enospc", "24m");
    let data = disk.path().join("data");
    let log = std::env::temp_dir().join(format!("warren-full-disk-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    // No alarm and no paging: the writes themselves hit ENOSPC.
    let flags = ["--disk-free-limit", "0", "--queue-memory-budget", "1000000000"];
    let broker = process::Broker::start_with(&data, &flags, Some(&log));
    let conn = connect(&broker.uri).await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(QUEUE.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut acked, nacked) = publish_until(&ch, 0, 4096, deadline, |_, nacks| nacks >= 200).await;
    println!("disk full: {} acked, {} nacked", acked.len(), nacked.len());
    assert!(!nacked.is_empty(), "a 24 MiB disk must fill up within 40 s of 4 KiB persistent publishes");

    // Durable declares while the disk is full: each either gets its ok and
    // must survive, or fails (541) and may not.
    let mut declared = Vec::new();
    for i in 0..20 {
        let c = connect(&broker.uri).await;
        let dch = c.create_channel().await.unwrap();
        let name = format!("declared-while-full-{i}-{}", "x".repeat(200));
        let mut args = FieldTable::default();
        args.insert("x-padding".into(), lapin::types::AMQPValue::LongString("p".repeat(4000).into()));
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            dch.queue_declare(name.as_str().into(), QueueDeclareOptions { durable: true, ..Default::default() }, args),
        )
        .await
        .expect("a declare on a full disk must be answered, not hang");
        match r {
            Ok(_) => declared.push(name),
            Err(e) => assert!(e.to_string().contains("INTERNAL_ERROR"), "unexpected declare error: {e}"),
        }
    }
    println!("{} of 20 durable declares got declare-ok while full", declared.len());

    // A transaction of persistent messages while full: commit-ok only if
    // they are on disk.
    // The channel publishes, so the alarm blocks it (as RabbitMQ would): the
    // commit is answered once space returns, with commit-ok only if the
    // messages are on disk.
    let tc = connect(&broker.uri).await;
    let tch = tc.create_channel().await.unwrap();
    tch.tx_select().await.unwrap();
    let commit = tokio::spawn(async move {
        let props = BasicProperties::default().with_delivery_mode(2);
        for i in 0..20u32 {
            let mut body = (2_000_000 + i).to_be_bytes().to_vec();
            body.resize(4096, b't');
            tch.basic_publish("".into(), QUEUE.into(), BasicPublishOptions::default(), &body, props.clone())
                .await
                .unwrap();
        }
        let r = tch.tx_commit().await;
        (r, tch, tc)
    });

    // Space returns: publishing works again without a restart.
    disk.resize("96m");
    let conn2 = connect(&broker.uri).await;
    let ch2 = conn2.create_channel().await.unwrap();
    ch2.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (after, after_nacked) = publish_until(&ch2, 1_000_000, 4096, deadline, |acks, _| acks >= 500).await;
    assert!(after.len() >= 500, "after space returned only {} of the publishes were confirmed", after.len());
    assert!(after_nacked.is_empty() || after.len() >= 500);
    acked.extend(after);
    let (committed, tch, tc) =
        tokio::time::timeout(Duration::from_secs(15), commit).await.expect("tx.commit never answered").unwrap();
    match committed {
        Ok(()) => acked.extend(2_000_000..2_000_020),
        Err(e) => assert!(e.to_string().contains("INTERNAL_ERROR"), "unexpected commit error: {e}"),
    }
    drop((ch, ch2, conn, conn2, tch, tc));

    // A crash, then count: every confirmed message is there.
    broker.kill9();
    let broker = process::Broker::start_with(&data, &flags, Some(&log));
    let recovered = drain(&broker.uri).await;
    let lost: Vec<&u32> = acked.iter().filter(|n| !recovered.contains(n)).collect();
    println!("{} confirmed, {} recovered, {} confirmed lost", acked.len(), recovered.len(), lost.len());
    assert!(lost.is_empty(), "{} confirmed messages lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let c = connect(&broker.uri).await;
    for name in &declared {
        let dch = c.create_channel().await.unwrap();
        dch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("queue {name} got declare-ok but is gone after a restart: {e}"));
    }
    drop(broker);

    // Once per episode, not once per message.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let failures = text.lines().filter(|l| l.contains("failed:") && l.contains("nacked")).count();
    assert!(failures >= 1, "the write failure was not logged:\n{text}");
    assert!(failures <= 5, "the write failure was logged {failures} times:\n{text}");
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_alarm_blocks_publishers_until_space_returns() {
    let disk = Tmpfs::new("alarm", "64m");
    let data = disk.path().join("data");
    let broker =
        process::Broker::start_with(&data, &["--disk-free-limit", "40MB", "--queue-memory-budget", "1000000000"], None);
    let conn = connect(&broker.uri).await;
    let mut events = conn.events_listener();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(QUEUE.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();

    // Fill past the limit: the broker blocks us before the disk is full.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = conn.status().clone();
    let (mut acked, nacked) = publish_until(&ch, 0, 16 * 1024, deadline, |_, _| status.blocked()).await;
    let reason = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = events.next().await {
            if let lapin::Event::ConnectionBlocked(reason) = e {
                return reason;
            }
        }
        String::new()
    })
    .await
    .expect("no connection.blocked within 5 s of filling the disk past its limit");
    assert_eq!(reason, "low on disk");
    assert!(nacked.is_empty(), "the alarm must block publishers before writes fail; {} were nacked", nacked.len());
    println!("blocked after {} confirmed publishes", acked.len());

    disk.resize("256m");
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.next().await {
            if matches!(e, lapin::Event::ConnectionUnblocked) {
                return;
            }
        }
    })
    .await
    .expect("no connection.unblocked within 10 s of space returning");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (after, after_nacked) = publish_until(&ch, 1_000_000, 1024, deadline, |acks, _| acks >= 200).await;
    assert!(after.len() >= 200 && after_nacked.is_empty(), "publishing did not resume: {} acked", after.len());
    acked.extend(after);
    drop((ch, conn));
    broker.kill9();
    let broker = process::Broker::start(&data);
    let recovered = drain(&broker.uri).await;
    assert!(acked.iter().all(|n| recovered.contains(n)), "confirmed messages were lost");
}
