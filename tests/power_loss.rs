//! Power loss, beyond what kill -9 shows: the store runs on a FUSE
//! filesystem that, at a simulated power cut, drops every write and every
//! directory entry that POSIX rules did not make durable (see powercut/).
//!
//! These tests prove the simulator itself, before it proves anything.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

mod powercut;

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
