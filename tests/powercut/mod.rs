//! A FUSE filesystem that simulates a power cut under strict POSIX
//! durability rules.
//!
//! `kill -9` cannot tell an fsync from no fsync: the page cache outlives the
//! process. This filesystem can. It keeps everything in memory, twice: the
//! *live* state that processes see, and the *durable* state that a disk would
//! still hold after the power went:
//!
//! - a file's data and size become durable when that file is fsynced or
//!   fdatasynced;
//! - a directory's entries (create, mknod, mkdir, link, unlink, rmdir, rename
//!   into or out of it) become durable when that directory is fsynced, and in
//!   no other way: fsyncing a file does not make its name durable. POSIX
//!   promises no more; that ext4 usually commits the name with the file is
//!   why a test on ext4 proves little;
//! - [`PowerCut::cut`] unmounts (the machine goes down), replaces the live
//!   state by the durable one, and mounts again (the reboot). What is left is
//!   what can be reached from the root through durable entries: a file that
//!   was fsynced under a name that never became durable is gone.
//!
//! Simplifications, none of which Warren's store relies on: permissions,
//! owners and times are kept but not tracked for durability (they survive a
//! cut as they are); a rename across directories is an unlink from one and a
//! link into the other, each durable with its own directory (stricter than
//! any journaling filesystem); only regular files and directories exist.
//! Locks (flock, fcntl) are left to the kernel, which keeps them itself when
//! the filesystem does not claim them; they die with the mount, as at a
//! reboot. Memory is reclaimed only at a cut: this is for tests of bounded
//! size.
#![allow(dead_code)] // each test binary that includes this uses part of it

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

type Ino = u64;

const ROOT: Ino = INodeNo::ROOT.0;

/// How long the kernel may cache names and attributes. Every change reaches
/// the filesystem through the kernel, and a cut remounts (dropping every
/// cache), so nothing changes behind the kernel's back.
const TTL: Duration = Duration::from_secs(1);

enum Node {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
        /// The lowest offset written or truncated since the last fsync, so
        /// that an fsync copies only what changed: Warren fdatasyncs its
        /// segments after every batch, and copying a whole segment each
        /// time would make the simulator quadratic.
        dirty_from: Option<usize>,
    },
    Dir {
        entries: BTreeMap<OsString, Ino>,
        durable: BTreeMap<OsString, Ino>,
    },
}

struct Inode {
    node: Node,
    /// Live names of a file; recounted at a cut.
    nlink: u32,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
}

struct State {
    inodes: HashMap<Ino, Inode>,
    /// Never reused, so a number the kernel still remembers never names a
    /// different file.
    next_ino: Ino,
    /// Directory listings taken at opendir: readdir pages through a
    /// snapshot, so removing entries while listing (as `remove_dir_all`
    /// does) cannot make it skip any.
    listings: HashMap<u64, Vec<(Ino, FileType, OsString)>>,
    next_fh: u64,
}

impl State {
    fn new() -> State {
        let root = Inode {
            node: Node::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() },
            nlink: 2,
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: SystemTime::now(),
        };
        State { inodes: HashMap::from([(ROOT, root)]), next_ino: ROOT + 1, listings: HashMap::new(), next_fh: 1 }
    }

    fn inode(&self, ino: Ino) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>, Errno> {
        match &self.inode(dir)?.node {
            Node::Dir { entries, .. } => Ok(entries),
            Node::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>, Errno> {
        match &mut self.inode_mut(dir)?.node {
            Node::Dir { entries, .. } => Ok(entries),
            Node::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn child(&self, dir: Ino, name: &OsStr) -> Result<Ino, Errno> {
        self.entries(dir)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.inodes.get(&ino), Some(Inode { node: Node::Dir { .. }, .. }))
    }

    fn attr(&self, ino: Ino) -> Result<FileAttr, Errno> {
        let inode = self.inode(ino)?;
        let (kind, size, nlink) = match &inode.node {
            Node::File { data, .. } => (FileType::RegularFile, data.len() as u64, inode.nlink),
            Node::Dir { entries, .. } => {
                let subdirs = entries.values().filter(|&&c| self.is_dir(c)).count() as u32;
                (FileType::Directory, 0, 2 + subdirs)
            }
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: inode.mtime,
            mtime: inode.mtime,
            ctime: inode.mtime,
            crtime: inode.mtime,
            kind,
            perm: inode.perm,
            nlink,
            uid: inode.uid,
            gid: inode.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.mtime = SystemTime::now();
        }
    }

    fn create(&mut self, req: &Request, parent: Ino, name: &OsStr, node: Node, mode: u32) -> Result<FileAttr, Errno> {
        // The kernel sends create/mknod/mkdir only for a name its lookup
        // found absent, so an existing name is a race we may refuse.
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let inode = Inode {
            node,
            nlink: 1,
            perm: (mode & 0o7777) as u16,
            uid: req.uid(),
            gid: req.gid(),
            mtime: SystemTime::now(),
        };
        self.inodes.insert(ino, inode);
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        self.touch(parent);
        self.attr(ino)
    }

    fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> Result<FileAttr, Errno> {
        if self.is_dir(ino) {
            return Err(Errno::EPERM);
        }
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        self.inode_mut(ino)?.nlink += 1;
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        self.touch(parent);
        self.attr(ino)
    }

    fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = self.child(parent, name)?;
        if self.is_dir(ino) {
            return Err(Errno::EISDIR);
        }
        self.entries_mut(parent)?.remove(name);
        let inode = self.inode_mut(ino)?;
        inode.nlink = inode.nlink.saturating_sub(1);
        self.touch(parent);
        Ok(())
    }

    fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = self.child(parent, name)?;
        if !self.entries(ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.entries_mut(parent)?.remove(name);
        self.touch(parent);
        Ok(())
    }

    fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        newparent: Ino,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        if flags.contains(RenameFlags::RENAME_EXCHANGE) || flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        let ino = self.child(parent, name)?;
        if let Some(&old) = self.entries(newparent)?.get(newname) {
            if old == ino {
                return Ok(());
            }
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            match (self.is_dir(ino), self.is_dir(old)) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                (true, true) if !self.entries(old)?.is_empty() => return Err(Errno::ENOTEMPTY),
                (false, false) => {
                    let replaced = self.inode_mut(old)?;
                    replaced.nlink = replaced.nlink.saturating_sub(1);
                }
                (true, true) => {}
            }
        }
        // The kernel refuses to move a directory into itself before asking.
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(newparent)?.insert(newname.to_owned(), ino);
        self.touch(parent);
        self.touch(newparent);
        Ok(())
    }

    fn file_mut(&mut self, ino: Ino) -> Result<(&mut Vec<u8>, &mut Option<usize>), Errno> {
        let inode = self.inode_mut(ino)?;
        inode.mtime = SystemTime::now();
        match &mut inode.node {
            Node::File { data, dirty_from, .. } => Ok((data, dirty_from)),
            Node::Dir { .. } => Err(Errno::EISDIR),
        }
    }

    fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> Result<u32, Errno> {
        let (data, dirty_from) = self.file_mut(ino)?;
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = start.checked_add(bytes.len()).ok_or(Errno::EFBIG)?;
        *dirty_from = Some(dirty_from.unwrap_or(usize::MAX).min(start).min(data.len()));
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        u32::try_from(bytes.len()).map_err(|_| Errno::EINVAL)
    }

    fn set_size(&mut self, ino: Ino, size: u64) -> Result<(), Errno> {
        let (data, dirty_from) = self.file_mut(ino)?;
        let size = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
        *dirty_from = Some(dirty_from.unwrap_or(usize::MAX).min(size).min(data.len()));
        data.resize(size, 0);
        Ok(())
    }

    fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<&[u8], Errno> {
        match &self.inode(ino)?.node {
            Node::File { data, .. } => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
                let end = start.saturating_add(size as usize).min(data.len());
                Ok(&data[start..end])
            }
            Node::Dir { .. } => Err(Errno::EISDIR),
        }
    }

    /// fsync, fdatasync and fsync of a directory: what is live becomes durable.
    fn sync(&mut self, ino: Ino) -> Result<(), Errno> {
        match &mut self.inode_mut(ino)?.node {
            Node::File { data, durable, dirty_from } => {
                if let Some(from) = dirty_from.take() {
                    // Everything before `from` is unchanged since the last sync.
                    durable.truncate(from.min(durable.len()));
                    durable.extend_from_slice(&data[durable.len()..]);
                }
            }
            Node::Dir { entries, durable } => durable.clone_from(entries),
        }
        Ok(())
    }

    fn opendir(&mut self, ino: Ino) -> Result<u64, Errno> {
        let mut listing = vec![(ino, FileType::Directory, ".".into()), (ROOT, FileType::Directory, "..".into())];
        for (name, &child) in self.entries(ino)? {
            let kind = if self.is_dir(child) { FileType::Directory } else { FileType::RegularFile };
            listing.push((child, kind, name.clone()));
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        self.listings.insert(fh, listing);
        Ok(fh)
    }

    /// The power goes: only what can be reached from the root through
    /// durable entries remains, each file with its durable data.
    fn cut(&mut self) {
        let mut kept = HashMap::new();
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            // Seen already: a hard link, or a cycle that only durable state
            // of separately fsynced directories can form.
            let Some(mut inode) = self.inodes.remove(&ino) else { continue };
            match &mut inode.node {
                Node::File { data, durable, dirty_from } => {
                    data.clone_from(durable);
                    *dirty_from = None;
                }
                Node::Dir { entries, durable } => {
                    entries.clone_from(durable);
                    todo.extend(durable.values());
                }
            }
            kept.insert(ino, inode);
        }
        let mut links: HashMap<Ino, u32> = HashMap::new();
        for inode in kept.values() {
            if let Node::Dir { entries, .. } = &inode.node {
                for &child in entries.values() {
                    *links.entry(child).or_default() += 1;
                }
            }
        }
        for (ino, inode) in kept.iter_mut() {
            inode.nlink = links.get(ino).copied().unwrap_or(1);
        }
        self.inodes = kept;
        self.listings.clear();
    }
}

/// What fuser calls; every call takes the one lock for its whole length.
struct Simulator(Arc<Mutex<State>>, Arc<Slowness>);

/// How slow the simulated disk is (all zero: as fast as memory).
#[derive(Default)]
struct Slowness {
    /// Milliseconds each fsync takes.
    fsync_ms: AtomicU64,
    /// Bytes a second that writes take (0: no limit).
    write_bytes_per_sec: AtomicU64,
}

impl Simulator {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge every later filesystem call.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn entry(reply: ReplyEntry, r: Result<FileAttr, Errno>) {
    match r {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn new_file() -> Node {
    Node::File { data: Vec::new(), durable: Vec::new(), dirty_from: None }
}

impl Filesystem for Simulator {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let s = self.state();
        entry(reply, s.child(parent.0, name).and_then(|ino| s.attr(ino)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = self.state();
        let r = (|| {
            if let Some(size) = size {
                s.set_size(ino.0, size)?;
            }
            let inode = s.inode_mut(ino.0)?;
            if let Some(mode) = mode {
                inode.perm = (mode & 0o7777) as u16;
            }
            inode.uid = uid.unwrap_or(inode.uid);
            inode.gid = gid.unwrap_or(inode.gid);
            match mtime {
                Some(TimeOrNow::SpecificTime(t)) => inode.mtime = t,
                Some(TimeOrNow::Now) => inode.mtime = SystemTime::now(),
                None => {}
            }
            s.attr(ino.0)
        })();
        match r {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        const S_IFMT: u32 = 0o170000;
        const S_IFREG: u32 = 0o100000;
        if mode & S_IFMT != S_IFREG {
            return reply.error(Errno::EPERM);
        }
        entry(reply, self.state().create(req, parent.0, name, new_file(), mode & !umask));
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let dir = Node::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() };
        entry(reply, self.state().create(req, parent.0, name, dir, mode & !umask));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.state().unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.state().rmdir(parent.0, name));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.state().rename(parent.0, name, newparent.0, newname, flags));
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        entry(reply, self.state().link(ino.0, newparent.0, newname));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.state().create(req, parent.0, name, new_file(), mode & !umask) {
            Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let rate = self.1.write_bytes_per_sec.load(Ordering::Relaxed);
        if rate > 0 {
            std::thread::sleep(Duration::from_secs_f64(data.len() as f64 / rate as f64));
        }
        match self.state().write(ino.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // A slow disk: requests are served one at a time, so every other
        // call waits too.
        let delay = self.1.fsync_ms.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        empty(reply, self.state().sync(ino.0));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let s = self.state();
        let Some(listing) = s.listings.get(&fh.0) else { return reply.error(Errno::EBADF) };
        for (i, (ino, kind, name)) in listing.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.state().listings.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        empty(reply, self.state().sync(ino.0));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty free, always: a full disk is another test's business, and
        // fuser's default answer (zero blocks) reads as a full disk to a
        // broker with a disk alarm.
        const BLOCKS: u64 = 1 << 20;
        let files = self.state().inodes.len() as u64;
        reply.statfs(BLOCKS, BLOCKS, BLOCKS, files + 1_000_000, 1_000_000, 4096, 255, 4096);
    }
}

const PREFIX: &str = "warren-powercut-";

/// Unmounts and removes what test processes that were killed (by a timeout,
/// say) left: a dead FUSE mount answers every call with ENOTCONN.
fn sweep_dead_mounts() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    for line in mounts.lines() {
        let Some(mountpoint) = line.split(' ').nth(1) else { continue };
        let mountpoint = Path::new(mountpoint);
        let Some(base) = mountpoint.parent() else { continue };
        let Some(name) = base.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|rest| rest.rsplit('-').next()) else { continue };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let _ = Command::new("umount").arg("-l").arg(mountpoint).output();
        let _ = std::fs::remove_dir_all(base);
    }
}

/// A mounted simulator in a fresh temporary directory, unmounted and removed
/// on drop.
pub struct PowerCut {
    /// Holds the mount point, and room beside it for files that must not be
    /// on the simulated disk (a broker's port file).
    base: PathBuf,
    mountpoint: PathBuf,
    state: Arc<Mutex<State>>,
    /// How slow the disk is.
    slowness: Arc<Slowness>,
    /// Present while mounted.
    session: Option<BackgroundSession>,
}

impl PowerCut {
    /// Mounts an empty simulator under the temp dir; `tag` keeps parallel
    /// tests apart. Panics, saying what is missing, where FUSE cannot be
    /// mounted: a test that needs power loss must not pass without it.
    pub fn new(tag: &str) -> PowerCut {
        assert!(
            Path::new("/dev/fuse").exists(),
            "the power-loss simulator needs /dev/fuse (the fuse kernel module: `modprobe fuse`)"
        );
        sweep_dead_mounts();
        let base = std::env::temp_dir().join(format!("{PREFIX}{tag}-{}", std::process::id()));
        let mountpoint = base.join("mnt");
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&mountpoint).expect("creating the mount point");
        let mut disk = PowerCut {
            base,
            mountpoint,
            state: Arc::new(Mutex::new(State::new())),
            slowness: Arc::default(),
            session: None,
        };
        disk.mount();
        disk
    }

    /// The root of the simulated disk.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Makes the disk slow: every fsync takes `fsync`, and writes go at
    /// `write_bytes_per_sec` (0: no limit). A disk that cannot keep up.
    #[allow(dead_code)]
    pub fn set_slow(&self, fsync: Duration, write_bytes_per_sec: u64) {
        self.slowness.fsync_ms.store(fsync.as_millis() as u64, Ordering::Relaxed);
        self.slowness.write_bytes_per_sec.store(write_bytes_per_sec, Ordering::Relaxed);
    }

    /// Cuts the power and boots again: afterwards the mount shows only what
    /// was durable. Every process using the mount must be dead first (as it
    /// would be after a real cut); a file still open makes this panic.
    pub fn cut(&mut self) {
        if let Err(e) = self.unmount() {
            panic!("cannot cut the power under {}: {e}; is a process still using it?", self.mountpoint.display());
        }
        self.state.lock().unwrap_or_else(PoisonError::into_inner).cut();
        self.mount();
    }

    fn mount(&mut self) {
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("warren-powercut".into())];
        match fuser::spawn_mount(
            Simulator(Arc::clone(&self.state), Arc::clone(&self.slowness)),
            &self.mountpoint,
            &config,
        ) {
            Ok(session) => self.session = Some(session),
            Err(e) => panic!(
                "cannot mount the power-loss simulator on {}: {e}. It needs root (mount(2) of a fuse \
                 filesystem) or, as another user, fusermount3 from Debian's fuse3 package",
                self.mountpoint.display()
            ),
        }
    }

    fn unmount(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else { return Ok(()) };
        // A fork in another thread of this process (a test spawning its
        // broker) holds copies of our open files until its exec closes
        // them, and the mount is busy meanwhile: try again for a while.
        // fuser's own unmount gives up its handle on the first failure, so
        // this one is done by umount(8).
        let mut refusal = String::new();
        for _ in 0..200 {
            let out = Command::new("umount").arg(&self.mountpoint).output()?;
            if out.status.success() {
                return session.join();
            }
            refusal = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            std::thread::sleep(Duration::from_millis(10));
        }
        self.session = Some(session);
        Err(io::Error::other(refusal))
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        if self.unmount().is_err() {
            // Something still holds a file open (a test failed before it
            // killed its broker): detach, so the directory can go.
            let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).output();
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
