//! Power loss, beyond what kill -9 shows: the store runs on a FUSE
//! filesystem that, at a simulated power cut, drops every write and every
//! directory entry that POSIX rules did not make durable (see powercut/).
//!
//! The first tests prove the simulator itself; the last one runs the warren
//! binary on it and counts confirmed messages after each cut.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

mod powercut;
mod process;

use powercut::PowerCut;

fn fsync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

/// Creates (or replaces) `path` with `data`, fsyncing the file if asked.
fn write_file(path: &Path, data: &[u8], fsync: bool) {
    let mut f = File::create(path).unwrap();
    f.write_all(data).unwrap();
    if fsync {
        f.sync_all().unwrap();
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

#[test]
fn simulator_loses_a_write_with_no_fsync() {
    let mut disk = PowerCut::new("unsynced");
    let f = disk.path().join("f");
    write_file(&f, b"", false);
    fsync_dir(disk.path());
    write_file(&f, b"never fsynced", false);
    assert_eq!(read(&f).as_deref(), Some(&b"never fsynced"[..]), "live state is what processes see");
    disk.cut();
    assert_eq!(read(&f).as_deref(), Some(&b""[..]), "the name was durable, the data was not");
}

#[test]
fn simulator_loses_a_new_file_whose_directory_was_not_fsynced() {
    let mut disk = PowerCut::new("newfile");
    write_file(&disk.path().join("f"), b"data", true);
    // A directory's own entries are not enough: its name in its parent must
    // be durable too.
    let sub = disk.path().join("sub");
    fs::create_dir(&sub).unwrap();
    write_file(&sub.join("g"), b"data", true);
    fsync_dir(&sub);
    disk.cut();
    assert_eq!(read(&disk.path().join("f")), None);
    assert!(!sub.exists());
    assert_eq!(fs::read_dir(disk.path()).unwrap().count(), 0);
}

#[test]
fn simulator_keeps_a_file_fsynced_with_its_directory() {
    let mut disk = PowerCut::new("durable");
    let sub = disk.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fsync_dir(disk.path());
    write_file(&sub.join("g"), b"data", true);
    fsync_dir(&sub);
    disk.cut();
    assert_eq!(read(&sub.join("g")).as_deref(), Some(&b"data"[..]));
    // And again after a second cut with nothing new.
    disk.cut();
    assert_eq!(read(&sub.join("g")).as_deref(), Some(&b"data"[..]));
}

#[test]
fn simulator_makes_a_rename_durable_with_its_directory() {
    let mut disk = PowerCut::new("rename");
    let (a, b) = (disk.path().join("a"), disk.path().join("b"));
    write_file(&a, b"a's data", true);
    fsync_dir(disk.path());

    fs::rename(&a, &b).unwrap();
    disk.cut();
    assert_eq!((read(&a).as_deref(), read(&b)), (Some(&b"a's data"[..]), None), "old name until the dir fsync");

    fs::rename(&a, &b).unwrap();
    fsync_dir(disk.path());
    disk.cut();
    assert_eq!((read(&a), read(&b).as_deref()), (None, Some(&b"a's data"[..])), "new name after it");

    // The atomic replace (temp file, fsync, rename over the target): the
    // old content until the directory is fsynced, the new one after, never
    // a mix or nothing.
    let tmp = disk.path().join("b.tmp");
    write_file(&tmp, b"new", true);
    fs::rename(&tmp, &b).unwrap();
    disk.cut();
    assert_eq!((read(&b).as_deref(), read(&tmp)), (Some(&b"a's data"[..]), None));
    write_file(&tmp, b"new", true);
    fs::rename(&tmp, &b).unwrap();
    fsync_dir(disk.path());
    disk.cut();
    assert_eq!((read(&b).as_deref(), read(&tmp)), (Some(&b"new"[..]), None));
}

#[test]
fn simulator_keeps_an_unlinked_file_until_its_directory_is_fsynced() {
    let mut disk = PowerCut::new("unlink");
    let (f, d) = (disk.path().join("f"), disk.path().join("d"));
    write_file(&f, b"data", true);
    fs::create_dir(&d).unwrap();
    fsync_dir(disk.path());

    fs::remove_file(&f).unwrap();
    fs::remove_dir(&d).unwrap();
    disk.cut();
    assert_eq!(read(&f).as_deref(), Some(&b"data"[..]));
    assert!(d.is_dir());

    fs::remove_file(&f).unwrap();
    fs::remove_dir(&d).unwrap();
    fsync_dir(disk.path());
    disk.cut();
    assert_eq!(read(&f), None);
    assert!(!d.exists());
}

#[test]
fn simulator_loses_what_was_appended_after_the_last_fsync() {
    let mut disk = PowerCut::new("append");
    let f = disk.path().join("log");
    write_file(&f, b"first;", true);
    fsync_dir(disk.path());
    let mut log = OpenOptions::new().append(true).open(&f).unwrap();
    log.write_all(b"second;").unwrap();
    log.sync_data().unwrap();
    log.write_all(b"third;").unwrap();
    drop(log);
    disk.cut();
    assert_eq!(read(&f).as_deref(), Some(&b"first;second;"[..]));

    // An overwrite before the durable end, and truncation, are undone too;
    // once fsynced they stay.
    let log = OpenOptions::new().write(true).open(&f).unwrap();
    std::os::unix::fs::FileExt::write_at(&log, b"FIRST", 0).unwrap();
    log.set_len(8).unwrap();
    drop(log);
    assert_eq!(read(&f).as_deref(), Some(&b"FIRST;se"[..]));
    disk.cut();
    assert_eq!(read(&f).as_deref(), Some(&b"first;second;"[..]));
    let log = OpenOptions::new().write(true).open(&f).unwrap();
    std::os::unix::fs::FileExt::write_at(&log, b"FIRST", 0).unwrap();
    log.set_len(8).unwrap();
    log.sync_data().unwrap();
    drop(log);
    disk.cut();
    assert_eq!(read(&f).as_deref(), Some(&b"FIRST;se"[..]));
}

/// What Warren's store does besides reading and writing: an exclusive flock
/// on its lock file, and `remove_dir_all` of a directory it lists while
/// deleting.
#[test]
fn simulator_supports_flock_and_removing_while_listing() {
    let disk = PowerCut::new("flock");
    let lock = disk.path().join("lock");
    let first = OpenOptions::new().create(true).truncate(false).write(true).open(&lock).unwrap();
    first.try_lock().unwrap();
    let second = OpenOptions::new().write(true).open(&lock).unwrap();
    assert!(matches!(second.try_lock(), Err(fs::TryLockError::WouldBlock)));
    drop(first);
    second.try_lock().unwrap();
    drop(second);

    let dir = disk.path().join("many");
    fs::create_dir(&dir).unwrap();
    for i in 0..500 {
        write_file(&dir.join(format!("{i:08}.page")), b"x", false);
    }
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 500);
    fs::remove_dir_all(&dir).unwrap();
    assert!(!dir.exists());
}

/// In one test process (`cargo test` runs tests as threads), another
/// test's fork briefly holds copies of this one's open files: a cut must
/// wait that out rather than fail.
#[test]
fn simulator_cuts_while_another_thread_spawns_processes() {
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::process::Command::new("true").status();
            }
        })
    };
    let mut disk = PowerCut::new("fork");
    for i in 0..100 {
        let f = disk.path().join(format!("f{i}"));
        write_file(&f, b"x", true);
        fsync_dir(disk.path());
        disk.cut();
        assert_eq!(read(&f).as_deref(), Some(&b"x"[..]));
    }
    stop.store(true, Ordering::Relaxed);
    spawner.join().unwrap();
}

const CYCLES: usize = 5;
/// Confirms to collect before each cut; the producers go on publishing up
/// to the cut, so some publishes are always in flight when it comes.
const CONFIRMS_PER_CYCLE: usize = 2_000;
const PRODUCERS: usize = 2;
const WINDOW: usize = 50;
const QUEUE: &str = "power-loss";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Ledger {
    published: HashSet<String>,
    /// Confirmed in the current cycle.
    confirmed: Vec<String>,
}

async fn connect(uri: &str) -> Connection {
    tokio::time::timeout(WAIT, Connection::connect(uri, ConnectionProperties::default()))
        .await
        .expect("connecting timed out")
        .expect("connecting to warren")
}

/// Publishes persistent messages in windows with confirms until the broker
/// dies (or, should it never, a bounded number of windows).
async fn produce(uri: String, cycle: usize, producer: usize, ledger: Arc<Mutex<Ledger>>) {
    let conn = connect(&uri).await;
    let Ok(ch) = conn.create_channel().await else { return };
    if ch.confirm_select(ConfirmSelectOptions::default()).await.is_err() {
        return;
    }
    let props = BasicProperties::default().with_delivery_mode(2);
    for window in 0..1_000 {
        let mut pending = Vec::with_capacity(WINDOW);
        for i in 0..WINDOW {
            let body = format!("c{cycle}-p{producer}-{}", window * WINDOW + i);
            ledger.lock().unwrap().published.insert(body.clone());
            let publish = ch.basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                props.clone(),
            );
            match publish.await {
                Ok(confirm) => pending.push((body, confirm)),
                Err(_) => return,
            }
        }
        for (body, confirm) in pending {
            match tokio::time::timeout(WAIT, confirm).await {
                Ok(Ok(c)) if c.is_ack() => ledger.lock().unwrap().confirmed.push(body),
                _ => return,
            }
        }
    }
}

/// Takes every message left in the queue: (body, redelivered).
async fn drain(uri: &str) -> Vec<(String, bool)> {
    let conn = connect(uri).await;
    let ch = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(QUEUE.into(), durable, FieldTable::default()).await.unwrap();
    let mut got = Vec::new();
    loop {
        let get = ch.basic_get(QUEUE.into(), BasicGetOptions { no_ack: true });
        let Some(m) = tokio::time::timeout(WAIT, get).await.expect("basic.get timed out").unwrap() else { break };
        got.push((String::from_utf8_lossy(&m.delivery.data).into_owned(), m.delivery.redelivered));
    }
    let _ = conn.close(200, "drained".into()).await;
    got
}

/// Each cycle: publish with confirms, SIGKILL the broker, cut the power,
/// boot, restart warren on the same disk, take everything and count. A
/// confirm means the message is durable, so none may be missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_power_loss() {
    let started = Instant::now();
    // Declared before the broker, so the broker is killed before the disk
    // is unmounted when a failure unwinds.
    let mut disk = PowerCut::new("warren");
    let mut broker = process::Broker::start(disk.path());
    {
        let conn = connect(&broker.uri).await;
        let ch = conn.create_channel().await.unwrap();
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare(QUEUE.into(), durable, FieldTable::default()).await.unwrap();
        let _ = conn.close(200, "declared".into()).await;
    }

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut times_seen: HashMap<String, usize> = HashMap::new();
    let mut silent_duplicates = Vec::new();
    let mut phantoms = Vec::new();
    let mut lost_per_cycle = Vec::new();
    let mut confirmed_total = 0;
    for cycle in 0..CYCLES {
        let producers: Vec<_> =
            (0..PRODUCERS).map(|p| tokio::spawn(produce(broker.uri.clone(), cycle, p, Arc::clone(&ledger)))).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = ledger.lock().unwrap().confirmed.len();
            if n >= CONFIRMS_PER_CYCLE {
                break;
            }
            assert!(Instant::now() < deadline, "cycle {cycle}: only {n} confirms in 20 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        broker.kill9();
        for p in producers {
            let _ = tokio::time::timeout(WAIT, p).await;
        }
        disk.cut();
        broker = process::Broker::start(disk.path());

        let confirmed: HashSet<String> = std::mem::take(&mut ledger.lock().unwrap().confirmed).into_iter().collect();
        let delivered = drain(&broker.uri).await;
        let mut recovered = HashSet::new();
        {
            let ledger = ledger.lock().unwrap();
            for (body, redelivered) in delivered {
                let times = times_seen.entry(body.clone()).or_default();
                *times += 1;
                if *times > 1 && !redelivered {
                    silent_duplicates.push(body.clone());
                }
                if !ledger.published.contains(&body) {
                    phantoms.push(body.clone());
                }
                recovered.insert(body);
            }
        }
        let lost = confirmed.difference(&recovered).count();
        println!(
            "cycle {cycle}: {} confirmed, {} of them recovered, {lost} lost; {} messages recovered in all",
            confirmed.len(),
            confirmed.len() - lost,
            recovered.len()
        );
        confirmed_total += confirmed.len();
        lost_per_cycle.push(lost);
    }
    assert!(broker.terminate(), "warren did not stop cleanly on the simulated disk");
    println!("{CYCLES} power cuts in {:.1} s", started.elapsed().as_secs_f64());

    let lost: usize = lost_per_cycle.iter().sum();
    assert_eq!(
        lost, 0,
        "{lost} of {confirmed_total} confirmed messages lost to power cuts (per cycle: {lost_per_cycle:?})"
    );
    assert!(silent_duplicates.is_empty(), "redelivered without the flag: {:?}", &silent_duplicates[..]);
    assert!(phantoms.is_empty(), "delivered but never published: {phantoms:?}");
}
