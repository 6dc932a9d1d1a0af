//! Durable definitions as a snapshot plus a journal of changes.
//!
//! `definitions.json` is a full snapshot in RabbitMQ's format (so it still
//! loads into RabbitMQ, and RabbitMQ's exports load as snapshots); it also
//! carries `warren_journal_seq`, the last journal record it includes.
//! `definitions.journal` holds the changes made since, one record each:
//!
//! ```text
//! u32 length of (seq + json)   big-endian
//! u32 CRC-32 of (seq + json)
//! u64 seq
//! json                         a `DefChange`
//! ```
//!
//! A declare costs one appended record (and shares its fsync with every
//! other change in the writer's batch), not a rewrite of every definition.
//! Once the journal outgrows the snapshot it is folded into a new snapshot:
//! each snapshot is paid for by as many bytes of changes as it holds, so the
//! cost per change stays constant however many objects exist.
//!
//! The writer thread owns the journal and keeps its own model of the
//! definitions, the snapshot's source. No broker types here.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::definitions::{
    BindingDef, Definitions, ExchangeDef, PermissionDef, PolicyDef, QueueDef, TopicPermissionDef, UserDef, VhostDef,
};
use super::fsutil::{sync_dir, write_atomic};

const RECORD_HEADER: usize = 8;
/// Far above any one definition: a larger length is a torn or corrupt record.
const MAX_RECORD: usize = 64 * 1024 * 1024;
/// Fold the journal into a snapshot once it holds this much more than the
/// snapshot itself.
const COMPACT_SLACK: u64 = 1024 * 1024;

/// One change to the durable definitions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DefChange {
    PutVhost(VhostDef),
    DeleteVhost {
        name: String,
    },
    PutUser(UserDef),
    DeleteUser {
        name: String,
    },
    PutPermission(PermissionDef),
    DeletePermission {
        user: String,
        vhost: String,
    },
    PutTopicPermission(TopicPermissionDef),
    /// One exchange's, or (`None`) all of the user's in the vhost.
    DeleteTopicPermission {
        user: String,
        vhost: String,
        exchange: Option<String>,
    },
    PutExchange(ExchangeDef),
    DeleteExchange {
        vhost: String,
        name: String,
    },
    PutQueue(QueueDef),
    DeleteQueue {
        vhost: String,
        name: String,
    },
    PutBinding(BindingDef),
    DeleteBinding(BindingDef),
    PutPolicy(PolicyDef),
    DeletePolicy {
        vhost: String,
        name: String,
    },
    PutOperatorPolicy(PolicyDef),
    DeleteOperatorPolicy {
        vhost: String,
        name: String,
    },
}

type Key = (String, String);
/// vhost, source, destination type, destination, routing key, arguments (as JSON text).
type BindingKey = (String, String, String, String, String, String);

fn binding_key(b: &BindingDef) -> BindingKey {
    (
        b.vhost.clone(),
        b.source.clone(),
        b.destination_type.clone(),
        b.destination.clone(),
        b.routing_key.clone(),
        serde_json::Value::Object(b.arguments.clone()).to_string(),
    )
}

/// The definitions as the journal has built them, keyed for O(log n) changes.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// Everything this model does not key (versions, policies, parameters...),
    /// carried over from the last snapshot or reset.
    rest: Definitions,
    vhosts: BTreeMap<String, VhostDef>,
    users: BTreeMap<String, UserDef>,
    permissions: BTreeMap<Key, PermissionDef>,
    /// user, vhost, exchange.
    topic_permissions: BTreeMap<(String, String, String), TopicPermissionDef>,
    exchanges: BTreeMap<Key, ExchangeDef>,
    queues: BTreeMap<Key, QueueDef>,
    bindings: BTreeMap<BindingKey, BindingDef>,
    /// vhost, name.
    policies: BTreeMap<Key, PolicyDef>,
    /// vhost, name; written as `parameters` with component `operator_policy`.
    operator_policies: BTreeMap<Key, PolicyDef>,
}

impl Model {
    pub(crate) fn from_definitions(d: Definitions) -> Self {
        let mut m = Model::default();
        for v in &d.vhosts {
            m.vhosts.insert(v.name.clone(), v.clone());
        }
        for u in &d.users {
            m.users.insert(u.name.clone(), u.clone());
        }
        for p in &d.permissions {
            m.permissions.insert((p.user.clone(), p.vhost.clone()), p.clone());
        }
        for t in &d.topic_permissions {
            m.topic_permissions.insert((t.user.clone(), t.vhost.clone(), t.exchange.clone()), t.clone());
        }
        for x in &d.exchanges {
            m.exchanges.insert((x.vhost.clone(), x.name.clone()), x.clone());
        }
        for q in &d.queues {
            m.queues.insert((q.vhost.clone(), q.name.clone()), q.clone());
        }
        for b in &d.bindings {
            m.bindings.insert(binding_key(b), b.clone());
        }
        for p in &d.policies {
            m.policies.insert((p.vhost.clone(), p.name.clone()), p.clone());
        }
        let mut parameters = Vec::new();
        for p in d.parameters.iter() {
            // RabbitMQ's `vhost-limits` parameter becomes the vhost's
            // `limits` field, which every later limit change rewrites; kept
            // as a parameter too, the file's first value would come back at
            // each boot over the newer one.
            if p.get("component").and_then(|c| c.as_str()) == Some("vhost-limits") {
                let vhost = p.get("vhost").and_then(|v| v.as_str()).and_then(|v| m.vhosts.get_mut(v));
                if let (Some(v), Some(value)) = (vhost, p.get("value")) {
                    v.limits.get_or_insert_with(|| value.clone());
                }
                continue;
            }
            match PolicyDef::from_parameter(p) {
                Some(op) => {
                    m.operator_policies.insert((op.vhost.clone(), op.name.clone()), op);
                }
                None => parameters.push(p.clone()),
            }
        }
        m.rest = Definitions {
            policies: vec![],
            parameters,
            vhosts: vec![],
            users: vec![],
            permissions: vec![],
            topic_permissions: vec![],
            exchanges: vec![],
            queues: vec![],
            bindings: vec![],
            ..d
        };
        m
    }

    pub(crate) fn to_definitions(&self) -> Definitions {
        Definitions {
            vhosts: self.vhosts.values().cloned().collect(),
            users: self.users.values().cloned().collect(),
            permissions: self.permissions.values().cloned().collect(),
            topic_permissions: self.topic_permissions.values().cloned().collect(),
            exchanges: self.exchanges.values().cloned().collect(),
            queues: self.queues.values().cloned().collect(),
            bindings: self.bindings.values().cloned().collect(),
            policies: self.policies.values().cloned().collect(),
            parameters: (self.rest.parameters.iter().cloned())
                .chain(self.operator_policies.values().map(PolicyDef::to_parameter))
                .collect(),
            ..self.rest.clone()
        }
    }

    pub(crate) fn apply(&mut self, change: &DefChange) {
        match change {
            DefChange::PutVhost(v) => {
                self.vhosts.insert(v.name.clone(), v.clone());
            }
            DefChange::DeleteVhost { name } => {
                self.vhosts.remove(name);
                self.permissions.retain(|(_, v), _| v != name);
                self.topic_permissions.retain(|(_, v, _), _| v != name);
                self.exchanges.retain(|(v, _), _| v != name);
                self.queues.retain(|(v, _), _| v != name);
                self.bindings.retain(|k, _| &k.0 != name);
                self.policies.retain(|(v, _), _| v != name);
                self.operator_policies.retain(|(v, _), _| v != name);
            }
            DefChange::PutUser(u) => {
                self.users.insert(u.name.clone(), u.clone());
            }
            DefChange::DeleteUser { name } => {
                self.users.remove(name);
                self.permissions.retain(|(u, _), _| u != name);
                self.topic_permissions.retain(|(u, _, _), _| u != name);
            }
            DefChange::PutPermission(p) => {
                self.permissions.insert((p.user.clone(), p.vhost.clone()), p.clone());
            }
            DefChange::DeletePermission { user, vhost } => {
                self.permissions.remove(&(user.clone(), vhost.clone()));
            }
            DefChange::PutTopicPermission(t) => {
                self.topic_permissions.insert((t.user.clone(), t.vhost.clone(), t.exchange.clone()), t.clone());
            }
            DefChange::DeleteTopicPermission { user, vhost, exchange } => {
                self.topic_permissions
                    .retain(|(u, v, x), _| !(u == user && v == vhost && exchange.as_ref().is_none_or(|e| e == x)));
            }
            DefChange::PutExchange(x) => {
                self.exchanges.insert((x.vhost.clone(), x.name.clone()), x.clone());
            }
            DefChange::DeleteExchange { vhost, name } => {
                self.exchanges.remove(&(vhost.clone(), name.clone()));
                self.bindings.retain(|k, _| !(&k.0 == vhost && (&k.1 == name || (k.2 == "exchange" && &k.3 == name))));
            }
            DefChange::PutQueue(q) => {
                self.queues.insert((q.vhost.clone(), q.name.clone()), q.clone());
            }
            DefChange::DeleteQueue { vhost, name } => {
                self.queues.remove(&(vhost.clone(), name.clone()));
                self.bindings.retain(|k, _| !(&k.0 == vhost && k.2 == "queue" && &k.3 == name));
            }
            DefChange::PutBinding(b) => {
                self.bindings.insert(binding_key(b), b.clone());
            }
            DefChange::DeleteBinding(b) => {
                self.bindings.remove(&binding_key(b));
            }
            DefChange::PutPolicy(p) => {
                self.policies.insert((p.vhost.clone(), p.name.clone()), p.clone());
            }
            DefChange::DeletePolicy { vhost, name } => {
                self.policies.remove(&(vhost.clone(), name.clone()));
            }
            DefChange::PutOperatorPolicy(p) => {
                self.operator_policies.insert((p.vhost.clone(), p.name.clone()), p.clone());
            }
            DefChange::DeleteOperatorPolicy { vhost, name } => {
                self.operator_policies.remove(&(vhost.clone(), name.clone()));
            }
        }
    }
}

fn encode(buf: &mut Vec<u8>, seq: u64, change: &DefChange) -> io::Result<()> {
    let json = serde_json::to_vec(change).map_err(io::Error::other)?;
    let start = buf.len();
    buf.extend_from_slice(&((8 + json.len()) as u32).to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&json);
    let crc = crc32fast::hash(&buf[start + RECORD_HEADER..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The record at the front of `data`: `(seq, change, size)`, or `None` where
/// the valid journal ends (torn, corrupt or not ours).
fn decode(data: &[u8]) -> Option<(u64, DefChange, usize)> {
    let head = data.get(..RECORD_HEADER)?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if !(8..=MAX_RECORD).contains(&len) {
        return None;
    }
    let body = data.get(RECORD_HEADER..RECORD_HEADER + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&body[..8]);
    let change = serde_json::from_slice(&body[8..]).ok()?;
    Some((u64::from_be_bytes(seq), change, RECORD_HEADER + len))
}

/// The writer's handle on definitions.json and definitions.journal.
pub(crate) struct Journal {
    snapshot_path: PathBuf,
    journal_path: PathBuf,
    file: Option<File>,
    /// Journal bytes known written and synced; a failed append is cut back to it.
    len: u64,
    next_seq: u64,
    snapshot_bytes: u64,
    model: Model,
    /// An append failed and could not be undone, or a change is missing from
    /// the journal: only a new snapshot makes the disk match the model.
    pub needs_snapshot: bool,
}

impl Journal {
    /// Reads the snapshot and replays the journal after it. A torn tail is
    /// cut off. Returns the journal and what it holds (`None`: nothing was
    /// ever saved here).
    pub(crate) fn recover(dir: &Path) -> io::Result<(Journal, Option<Definitions>)> {
        let snapshot_path = dir.join("definitions.json");
        let journal_path = dir.join("definitions.journal");
        let (snapshot, snapshot_bytes) = match fs::read_to_string(&snapshot_path) {
            Ok(text) => {
                let d = Definitions::from_json(&text).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: not a definitions file: {e}", snapshot_path.display()),
                    )
                })?;
                (Some(d), text.len() as u64)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, 0),
            Err(e) => return Err(e),
        };
        let snapshot_seq = snapshot.as_ref().and_then(|d| d.warren_journal_seq).unwrap_or(0);
        let mut data = Vec::new();
        match File::open(&journal_path) {
            Ok(mut f) => {
                f.read_to_end(&mut data)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let found = snapshot.is_some() || !data.is_empty();
        let mut model = Model::from_definitions(snapshot.unwrap_or_default());
        let mut at = 0;
        let mut last_seq = snapshot_seq;
        while let Some((seq, change, size)) = decode(&data[at..]) {
            // Records up to the snapshot's own seq are already in it (a crash
            // between writing a snapshot and emptying the journal leaves them).
            if seq > snapshot_seq {
                model.apply(&change);
                last_seq = last_seq.max(seq);
            }
            at += size;
        }
        if at < data.len() {
            tracing::warn!(
                journal = %journal_path.display(),
                "dropping {} bytes of torn or corrupt definition records at the end",
                data.len() - at
            );
            let f = OpenOptions::new().write(true).open(&journal_path)?;
            f.set_len(at as u64)?;
            f.sync_all()?;
        }
        let journal = Journal {
            snapshot_path,
            journal_path,
            file: None,
            len: at as u64,
            next_seq: last_seq + 1,
            snapshot_bytes,
            model,
            needs_snapshot: false,
        };
        let defs = found.then(|| journal.model.to_definitions());
        Ok((journal, defs))
    }

    fn open_file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let existed = self.journal_path.exists();
            let f = OpenOptions::new().create(true).append(true).open(&self.journal_path)?;
            if !existed {
                // The name must be durable before records in it are relied on.
                sync_dir(self.journal_path.parent().unwrap_or(Path::new(".")))?;
            }
            self.file = Some(f);
        }
        // Just set above when it was missing.
        self.file.as_mut().ok_or_else(|| io::Error::other("journal file not open"))
    }

    /// Applies `changes` to the model and makes them durable: appended and
    /// fdatasynced, or folded into a snapshot. On error the model still holds
    /// them (it mirrors the broker's memory) and the next batch writes a
    /// snapshot.
    pub(crate) fn commit(&mut self, changes: &[DefChange]) -> io::Result<()> {
        for c in changes {
            self.model.apply(c);
        }
        if self.needs_snapshot || self.len > 2 * self.snapshot_bytes + COMPACT_SLACK {
            return self.snapshot();
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for c in changes {
            encode(&mut buf, self.next_seq, c)?;
            self.next_seq += 1;
        }
        let good = self.len;
        let result = self.open_file().and_then(|f| {
            f.write_all(&buf)?;
            f.sync_data()
        });
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A partial record would hide every later one: cut it off,
                // or, if even that fails, stop trusting the file.
                let cut = self.file.as_ref().map(|f| f.set_len(good).and_then(|_| f.sync_data()));
                if !matches!(cut, Some(Ok(()))) {
                    self.file = None;
                }
                self.needs_snapshot = true;
                Err(e)
            }
        }
    }

    /// Replaces the model with `defs` and writes it as the snapshot.
    pub(crate) fn reset(&mut self, defs: Definitions) -> io::Result<()> {
        self.model = Model::from_definitions(defs);
        self.snapshot()
    }

    /// Writes the model as a new snapshot, then empties the journal.
    pub(crate) fn snapshot(&mut self) -> io::Result<()> {
        self.needs_snapshot = true;
        let seq = self.next_seq.saturating_sub(1);
        let mut defs = self.model.to_definitions();
        defs.warren_journal_seq = Some(seq);
        let json = serde_json::to_vec_pretty(&defs).map_err(io::Error::other)?;
        write_atomic(&self.snapshot_path, &json)?;
        self.snapshot_bytes = json.len() as u64;
        // The snapshot holds everything up to `seq`, so the old records are
        // skipped even if a crash keeps them; an empty journal replaces them.
        self.file = None;
        write_atomic(&self.journal_path, &[])?;
        self.len = 0;
        self.needs_snapshot = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-journal-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn queue(name: &str) -> DefChange {
        DefChange::PutQueue(QueueDef {
            name: name.into(),
            vhost: "/".into(),
            durable: true,
            auto_delete: false,
            arguments: Map::new(),
        })
    }

    fn names(d: &Definitions) -> Vec<String> {
        d.queues.iter().map(|q| q.name.clone()).collect()
    }

    #[test]
    fn changes_survive_a_restart_and_deletes_take_bindings_along() {
        let dir = tmpdir("replay");
        let (mut j, found) = Journal::recover(&dir).unwrap();
        assert!(found.is_none());
        j.reset(Definitions::default()).unwrap();
        j.commit(&[queue("a"), queue("b")]).unwrap();
        let bind = BindingDef {
            source: "amq.direct".into(),
            vhost: "/".into(),
            destination: "a".into(),
            destination_type: "queue".into(),
            routing_key: "k".into(),
            arguments: Map::new(),
        };
        j.commit(&[DefChange::PutBinding(bind.clone()), DefChange::PutBinding(bind)]).unwrap();
        j.commit(&[DefChange::DeleteQueue { vhost: "/".into(), name: "b".into() }]).unwrap();
        drop(j);
        let (_, d) = Journal::recover(&dir).unwrap();
        let d = d.unwrap();
        assert_eq!(names(&d), vec!["a"]);
        assert_eq!(d.bindings.len(), 1);
        let (mut j, _) = Journal::recover(&dir).unwrap();
        j.commit(&[DefChange::DeleteQueue { vhost: "/".into(), name: "a".into() }]).unwrap();
        drop(j);
        let (_, d) = Journal::recover(&dir).unwrap();
        assert!(d.unwrap().bindings.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn policies_and_operator_policies_replay_and_snapshot() {
        let dir = tmpdir("policies");
        let (mut j, _) = Journal::recover(&dir).unwrap();
        let other = serde_json::json!({"vhost": "/", "component": "federation-upstream", "name": "u", "value": {}});
        j.reset(Definitions { parameters: vec![other.clone()], ..Definitions::default() }).unwrap();
        let policy = |name: &str| PolicyDef {
            vhost: "/".into(),
            name: name.into(),
            pattern: ".*".into(),
            apply_to: "queues".into(),
            definition: Map::from_iter([("max-length".to_owned(), 1.into())]),
            priority: 0,
        };
        j.commit(&[
            DefChange::PutPolicy(policy("p1")),
            DefChange::PutPolicy(policy("p2")),
            DefChange::PutOperatorPolicy(policy("o1")),
            DefChange::PutOperatorPolicy(policy("o2")),
        ])
        .unwrap();
        j.commit(&[
            DefChange::DeletePolicy { vhost: "/".into(), name: "p2".into() },
            DefChange::DeleteOperatorPolicy { vhost: "/".into(), name: "o2".into() },
        ])
        .unwrap();
        for snapshot in [false, true] {
            if snapshot {
                j.snapshot().unwrap();
            }
            let (_, d) = Journal::recover(&dir).unwrap();
            let d = d.unwrap();
            assert_eq!(d.policies, vec![policy("p1")]);
            assert_eq!(d.parameters, vec![other.clone(), policy("o1").to_parameter()]);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_and_older_records_stay() {
        let dir = tmpdir("torn");
        let (mut j, _) = Journal::recover(&dir).unwrap();
        j.reset(Definitions::default()).unwrap();
        j.commit(&[queue("kept")]).unwrap();
        drop(j);
        let path = dir.join("definitions.journal");
        let good = fs::metadata(&path).unwrap().len();
        let mut tail = Vec::new();
        encode(&mut tail, 99, &queue("torn")).unwrap();
        OpenOptions::new().append(true).open(&path).unwrap().write_all(&tail[..tail.len() - 3]).unwrap();
        let (_, d) = Journal::recover(&dir).unwrap();
        assert_eq!(names(&d.unwrap()), vec!["kept"]);
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_already_in_the_snapshot_are_not_replayed() {
        let dir = tmpdir("snap");
        let (mut j, _) = Journal::recover(&dir).unwrap();
        j.reset(Definitions::default()).unwrap();
        j.commit(&[queue("q")]).unwrap();
        j.commit(&[DefChange::DeleteQueue { vhost: "/".into(), name: "q".into() }]).unwrap();
        // A crash between the snapshot and the journal reset: the old
        // records are still there, but the snapshot already holds them.
        let old = fs::read(dir.join("definitions.journal")).unwrap();
        j.snapshot().unwrap();
        fs::write(dir.join("definitions.journal"), &old).unwrap();
        let (_, d) = Journal::recover(&dir).unwrap();
        assert!(names(&d.unwrap()).is_empty(), "the deleted queue must not come back");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_journal_is_folded_into_a_snapshot_once_it_outgrows_it() {
        let dir = tmpdir("compact");
        let (mut j, _) = Journal::recover(&dir).unwrap();
        j.reset(Definitions::default()).unwrap();
        let big: Vec<DefChange> = (0..20_000).map(|i| queue(&format!("queue-{i:06}"))).collect();
        for chunk in big.chunks(100) {
            j.commit(chunk).unwrap();
        }
        // ~2 MiB of records: at least one fold, and the journal is smaller
        // than everything written.
        assert!(fs::metadata(dir.join("definitions.journal")).unwrap().len() < 2 * 1024 * 1024);
        drop(j);
        let (_, d) = Journal::recover(&dir).unwrap();
        assert_eq!(d.unwrap().queues.len(), 20_000);
        fs::remove_dir_all(&dir).unwrap();
    }
}
