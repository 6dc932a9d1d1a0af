//! Field tables and field arrays as raw bytes: walk, iterate, look up, edit
//! and build them without decoding, and decode them (into amq-protocol's
//! types) only when they nest no deeper than [`MAX_DECODE_DEPTH`].
//!
//! The grammar is RabbitMQ's (`rabbit_binary_parser`), which a client
//! observes: a table is a 4-byte length and `key value` entries, a key a
//! short string of any bytes, a value a type tag and its bytes. Tags:
//! `t b B s u I i l L f d D T V` (fixed sizes), `S x` (4-byte length and
//! bytes), `F` (a table), `A` (an array: a 4-byte length and tagged values).
//! Anything else, such as the spec's `U`, RabbitMQ refuses, and so does this.
//!
//! Nothing here recurses: [`walk_table`] keeps the open containers on an
//! explicit stack (inline for the first 16 levels, then on the heap, never
//! one allocation per level), and everything else looks at one level only,
//! skipping nested values by their length prefix.

use std::fmt;

use amq_protocol::types::{AMQPType, AMQPValue, FieldTable};
use smallvec::SmallVec;

/// How deep a table may nest for us to decode it into `AMQPValue`s (the
/// outermost table counts as 1). amq-protocol's parser recurses, and so do
/// `Drop`, `Clone`, `Debug` and `PartialEq` of what it builds: measured on
/// this machine, its parser alone needs about 10 KiB of stack per level in a
/// debug build and about 1.7 KiB in a release build, so a 2 MiB tokio worker
/// overflows at about 208 (debug) and 1,178 (release) nested tables. 64
/// keeps a debug build under 700 KiB, a third of a worker's stack, and is
/// far above real use: the deepest structure RabbitMQ itself writes is an
/// `x-death` header (headers → array → table → array: 4 levels); client
/// properties nest 2 levels. Beyond it we never decode; raw bytes still
/// pass through untouched at any depth.
pub(crate) const MAX_DECODE_DEPTH: usize = 64;

/// Why bytes are not a field table (or value) we can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The bytes end before the table (or value) does: a prefix of a valid
    /// table is always this, never `Malformed`.
    Incomplete,
    /// Not a field table: an unknown type tag, or a key or value that runs
    /// past the end of the table or array that contains it. `at` is the
    /// offset (from the start of the walked bytes) where it stops making sense.
    Malformed { at: usize },
    /// Nested deeper than the caller's limit; `at` is the offset of the type
    /// tag of the first container beyond it.
    TooDeep { at: usize },
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Incomplete => write!(f, "field table cut short"),
            TableError::Malformed { at } => write!(f, "malformed field table at offset {at}"),
            TableError::TooDeep { at } => write!(f, "field table nested too deep at offset {at}"),
        }
    }
}

impl std::error::Error for TableError {}

/// What a walk found: how many bytes the table (or value) occupies, and how
/// deep it nests (a table of scalars is 1, a scalar 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    pub len: usize,
    pub depth: usize,
}

/// The layout of a value after its type tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Fixed(usize),
    /// A 4-byte length, then that many bytes.
    Sized,
    Table,
    Array,
}

fn shape(tag: u8) -> Option<Shape> {
    Some(match tag {
        b'V' => Shape::Fixed(0),
        b't' | b'b' | b'B' => Shape::Fixed(1),
        b's' | b'u' => Shape::Fixed(2),
        b'I' | b'i' | b'f' => Shape::Fixed(4),
        b'D' => Shape::Fixed(5),
        b'l' | b'L' | b'd' | b'T' => Shape::Fixed(8),
        b'S' | b'x' => Shape::Sized,
        b'F' => Shape::Table,
        b'A' => Shape::Array,
        _ => return None,
    })
}

fn read_len(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Walks a field table that starts with its 4-byte length at `buf[0]`,
/// checking every nested value, and reports its size and depth. Fails with
/// `TooDeep` as soon as it would open a container beyond `limit` levels
/// (pass `usize::MAX` to measure any depth; the explicit stack then grows
/// on the heap, 16 bytes a level). Bytes after the table are not looked at.
pub(crate) fn walk_table(buf: &[u8], limit: usize) -> Result<Walk, TableError> {
    walk_container(buf, true, limit)
}

/// Walks one value of type `tag` whose bytes start at `buf[0]` (just after
/// the tag). A scalar has depth 0.
pub(crate) fn walk_value(tag: u8, buf: &[u8], limit: usize) -> Result<Walk, TableError> {
    match shape(tag) {
        None => Err(TableError::Malformed { at: 0 }),
        Some(Shape::Table) => walk_container(buf, true, limit),
        Some(Shape::Array) => walk_container(buf, false, limit),
        Some(_) => value_len(tag, buf).map(|len| Walk { len, depth: 0 }),
    }
}

fn walk_container(buf: &[u8], is_table: bool, limit: usize) -> Result<Walk, TableError> {
    let len = read_len(buf, 0).ok_or(TableError::Incomplete)?;
    let total = len.checked_add(4).filter(|&t| t <= buf.len()).ok_or(TableError::Incomplete)?;
    if limit == 0 {
        return Err(TableError::TooDeep { at: 0 });
    }
    // (end offset, is a table) of every container still open, outermost first.
    let mut open: SmallVec<[(usize, bool); 16]> = SmallVec::new();
    open.push((total, is_table));
    let mut depth = 1;
    let mut pos = 4;
    while let Some(&(end, in_table)) = open.last() {
        if pos == end {
            open.pop();
            continue;
        }
        let malformed = |at: usize| TableError::Malformed { at };
        if in_table {
            // pos < end <= buf.len(), so the key length octet is there.
            let key_len = buf[pos] as usize;
            pos += 1 + key_len;
            if pos >= end {
                // A key needs a value after it.
                return Err(malformed(pos.min(end)));
            }
        }
        let tag_at = pos;
        let tag = buf[pos];
        pos += 1;
        match shape(tag) {
            None => return Err(malformed(tag_at)),
            Some(Shape::Fixed(n)) => pos += n,
            Some(Shape::Sized) => match read_len(&buf[..end], pos) {
                Some(n) => pos = pos.saturating_add(4).saturating_add(n),
                None => return Err(malformed(pos)),
            },
            Some(kind) => {
                let Some(n) = read_len(&buf[..end], pos) else { return Err(malformed(pos)) };
                let inner_end = pos.saturating_add(4).saturating_add(n);
                if inner_end > end {
                    return Err(malformed(pos));
                }
                if open.len() >= limit {
                    return Err(TableError::TooDeep { at: tag_at });
                }
                open.push((inner_end, kind == Shape::Table));
                depth = depth.max(open.len());
                pos += 4;
                continue;
            }
        }
        if pos > end {
            return Err(malformed(tag_at));
        }
    }
    Ok(Walk { len: total, depth })
}

/// How many bytes a value of type `tag` occupies after its tag, found from
/// its size or length prefix alone (a nested table is skipped, not walked).
pub(crate) fn value_len(tag: u8, buf: &[u8]) -> Result<usize, TableError> {
    let n = match shape(tag).ok_or(TableError::Malformed { at: 0 })? {
        Shape::Fixed(n) => n,
        Shape::Sized | Shape::Table | Shape::Array => {
            read_len(buf, 0).ok_or(TableError::Incomplete)?.checked_add(4).ok_or(TableError::Incomplete)?
        }
    };
    if n > buf.len() {
        return Err(TableError::Incomplete);
    }
    Ok(n)
}

/// The entries of a table given with its length prefix (bytes after the
/// table are ignored).
pub(crate) fn table_body(table: &[u8]) -> Result<&[u8], TableError> {
    let len = read_len(table, 0).ok_or(TableError::Incomplete)?;
    table.get(4..len.checked_add(4).ok_or(TableError::Incomplete)?).ok_or(TableError::Incomplete)
}

/// One top-level entry of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub key: &'a [u8],
    pub tag: u8,
    /// The value's bytes after its tag (for `S`, `x`, `F` and `A` including
    /// the 4-byte length).
    pub value: &'a [u8],
    /// The whole entry as it was on the wire: key length, key, tag, value.
    pub raw: &'a [u8],
}

/// Iterates over the top-level entries of a table body (the bytes after the
/// length prefix), in wire order, duplicates included. Nested values are
/// skipped by their length, not checked: walk the table first to validate
/// it. Yields one `Err` and stops at the first entry that does not fit.
pub(crate) fn entries(body: &[u8]) -> Entries<'_> {
    Entries { body, pos: 0, done: false }
}

pub(crate) struct Entries<'a> {
    body: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.body.len() {
            return None;
        }
        let start = self.pos;
        let entry = (|| {
            let key_len = *self.body.get(start)? as usize;
            let key = self.body.get(start + 1..start + 1 + key_len)?;
            let tag_at = start + 1 + key_len;
            let tag = *self.body.get(tag_at)?;
            let rest = &self.body[tag_at + 1..];
            let n = value_len(tag, rest).ok()?;
            let end = tag_at + 1 + n;
            Some(Entry { key, tag, value: &rest[..n], raw: &self.body[start..end] })
        })();
        match entry {
            Some(e) => {
                self.pos = start + e.raw.len();
                Some(Ok(e))
            }
            None => {
                self.done = true;
                Some(Err(TableError::Malformed { at: start }))
            }
        }
    }
}

/// One value of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    /// Tag and value as on the wire.
    pub raw: &'a [u8],
}

/// Iterates over the values of an array body (the bytes after its length
/// prefix), one level only, like [`entries`].
pub(crate) fn items(body: &[u8]) -> Items<'_> {
    Items { body, pos: 0, done: false }
}

pub(crate) struct Items<'a> {
    body: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<Item<'a>, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.body.len() {
            return None;
        }
        let start = self.pos;
        let tag = self.body[start];
        let rest = &self.body[start + 1..];
        match value_len(tag, rest) {
            Ok(n) => {
                self.pos = start + 1 + n;
                Some(Ok(Item { tag, value: &rest[..n], raw: &self.body[start..start + 1 + n] }))
            }
            Err(_) => {
                self.done = true;
                Some(Err(TableError::Malformed { at: start }))
            }
        }
    }
}

/// The first entry named `key` (RabbitMQ's `table_lookup` takes the first
/// of duplicate keys), or `None` if there is none before the body ends or
/// stops making sense.
pub(crate) fn find<'a>(body: &'a [u8], key: &[u8]) -> Option<Entry<'a>> {
    entries(body).map_while(Result::ok).find(|e| e.key == key)
}

/// A long string's bytes (`S`), for the values RabbitMQ reads as text
/// (CC/BCC keys, x-death fields, AMQPLAIN credentials).
pub(crate) fn long_string(tag: u8, value: &[u8]) -> Option<&[u8]> {
    (tag == b'S').then(|| value.get(4..)).flatten()
}

/// The body of a table value (`F`).
pub(crate) fn table_value(tag: u8, value: &[u8]) -> Option<&[u8]> {
    (tag == b'F').then(|| value.get(4..)).flatten()
}

/// The body of an array value (`A`).
pub(crate) fn array_value(tag: u8, value: &[u8]) -> Option<&[u8]> {
    (tag == b'A').then(|| value.get(4..)).flatten()
}

/// An integer value of any width (and a timestamp) as one number.
pub(crate) fn integer(tag: u8, v: &[u8]) -> Option<i128> {
    let be = |n: usize| -> Option<[u8; 8]> {
        let b = v.get(..n)?;
        let mut a = [0u8; 8];
        a[8 - n..].copy_from_slice(b);
        Some(a)
    };
    Some(match tag {
        b'b' => *v.first()? as i8 as i128,
        b'B' => *v.first()? as i128,
        b's' => i16::from_be_bytes(v.get(..2)?.try_into().ok()?) as i128,
        b'u' => u16::from_be_bytes(v.get(..2)?.try_into().ok()?) as i128,
        b'I' => i32::from_be_bytes(v.get(..4)?.try_into().ok()?) as i128,
        b'i' => u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as i128,
        b'l' | b'L' => i64::from_be_bytes(be(8)?) as i128,
        b'T' => u64::from_be_bytes(be(8)?) as i128,
        _ => return None,
    })
}

/// RabbitMQ's name for the type of a tag, as its error texts print it.
pub(crate) fn type_name(tag: u8) -> &'static str {
    match tag {
        b't' => "bool",
        b'b' => "byte",
        b'B' => "unsignedbyte",
        b's' => "short",
        b'u' => "unsignedshort",
        b'I' => "signedint",
        b'i' => "unsignedint",
        b'l' | b'L' => "long",
        b'f' => "float",
        b'd' => "double",
        b'D' => "decimal",
        b'S' => "longstr",
        b'A' => "array",
        b'T' => "timestamp",
        b'F' => "table",
        b'x' => "binary",
        b'V' => "void",
        _ => "unknown",
    }
}

// ------------------------------------------------------------------ writing

/// Starts a table or array in `out`: a length placeholder for [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Fills in the length of the table or array [`begin`] started at `at`.
pub(crate) fn finish(out: &mut [u8], at: usize) {
    let len = out.len() - at - 4;
    debug_assert!(len <= u32::MAX as usize, "field table over 4 GiB");
    out[at..at + 4].copy_from_slice(&(len.min(u32::MAX as usize) as u32).to_be_bytes());
}

/// Writes an entry's key. Keys are our own names or keys that arrived as
/// short strings, so the 255-byte cap is an invariant; truncating keeps a
/// bug from producing a corrupt table.
pub(crate) fn put_key(out: &mut Vec<u8>, key: &[u8]) {
    debug_assert!(key.len() <= 255, "field table key over 255 bytes");
    let key = &key[..key.len().min(255)];
    out.push(key.len() as u8);
    out.extend_from_slice(key);
}

/// Writes a long string value (`S`), tag included.
pub(crate) fn put_long_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'S');
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Writes a signed 64-bit value (`l`, RabbitMQ's `long`), tag included.
pub(crate) fn put_long(out: &mut Vec<u8>, v: i64) {
    out.push(b'l');
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes a timestamp value (`T`), tag included.
pub(crate) fn put_timestamp(out: &mut Vec<u8>, v: u64) {
    out.push(b'T');
    out.extend_from_slice(&v.to_be_bytes());
}

/// One change [`write_edited`] makes to a table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Edit<'a> {
    /// Drops every entry with this key.
    Remove(&'a [u8]),
    /// Replaces the first entry with this key in place (later duplicates
    /// stay, as RabbitMQ's `set_table_value` leaves them) or, if there is
    /// none, appends one. The value is its tag and bytes.
    Set(&'a [u8], &'a [u8]),
}

impl Edit<'_> {
    fn key(&self) -> &[u8] {
        match self {
            Edit::Remove(k) | Edit::Set(k, _) => k,
        }
    }
}

/// Writes the table whose entries are `body`, with `edits` applied, length
/// prefix included, to `out`. Every entry no edit names is copied byte for
/// byte, in its place; appended entries follow in edit order.
pub(crate) fn write_edited(body: &[u8], edits: &[Edit<'_>], out: &mut Vec<u8>) -> Result<(), TableError> {
    let at = begin(out);
    let mut applied: SmallVec<[bool; 8]> = SmallVec::from_elem(false, edits.len());
    for entry in entries(body) {
        let entry = entry?;
        match edits.iter().position(|e| e.key() == entry.key) {
            Some(i) => match edits[i] {
                Edit::Remove(_) => {}
                Edit::Set(key, value) if !applied[i] => {
                    applied[i] = true;
                    put_key(out, key);
                    out.extend_from_slice(value);
                }
                Edit::Set(..) => out.extend_from_slice(entry.raw),
            },
            None => out.extend_from_slice(entry.raw),
        }
    }
    for (edit, done) in edits.iter().zip(applied) {
        if let (Edit::Set(key, value), false) = (edit, done) {
            put_key(out, key);
            out.extend_from_slice(value);
        }
    }
    finish(out, at);
    Ok(())
}

// ----------------------------------------------------------------- decoding

/// Decodes a table (given with its length prefix) into amq-protocol's
/// `FieldTable`, only if it is well formed and nests no deeper than
/// [`MAX_DECODE_DEPTH`]: the depth is checked before the recursive parser
/// sees a byte. amq-protocol also insists on UTF-8 keys (`Malformed`
/// otherwise). The map it builds sorts keys and keeps the last of duplicate
/// keys: decode only to read values, never to re-encode a peer's table.
pub(crate) fn decode_table(table: &[u8]) -> Result<FieldTable, TableError> {
    let walk = walk_table(table, MAX_DECODE_DEPTH)?;
    match amq_protocol::types::parsing::parse_field_table(&table[..walk.len]) {
        Ok(([], t)) => Ok(t),
        _ => Err(TableError::Malformed { at: 0 }),
    }
}

/// Decodes one value (`value` holds the bytes after its tag), under the same
/// rule as [`decode_table`].
pub(crate) fn decode_value(tag: u8, value: &[u8]) -> Result<AMQPValue, TableError> {
    use nom::Parser;
    let walk = walk_value(tag, value, MAX_DECODE_DEPTH)?;
    let kind = AMQPType::from_id(tag as char).ok_or(TableError::Malformed { at: 0 })?;
    match amq_protocol::types::parsing::parse_raw_value(kind).parse(&value[..walk.len]) {
        Ok(([], v)) => Ok(v),
        _ => Err(TableError::Malformed { at: 0 }),
    }
}

/// Builders of deeply nested tables, for tests here and elsewhere.
#[cfg(test)]
pub(crate) mod tests_support {
    /// `{"a": {"a": ... {}}}`: `depth` tables, with the length prefix.
    /// Written outside in, as each level's length is known: linear time.
    pub(crate) fn nested_tables(depth: usize) -> Vec<u8> {
        let mut t = Vec::with_capacity(7 * depth);
        for level in 0..depth {
            t.extend_from_slice(&((7 * (depth - 1 - level)) as u32).to_be_bytes());
            if level + 1 < depth {
                t.extend_from_slice(b"\x01aF");
            }
        }
        t
    }

    /// A table holding `{"a": [[[...]]]}` with `depth - 1` nested arrays
    /// (`depth` at least 2).
    pub(crate) fn nested_arrays(depth: usize) -> Vec<u8> {
        assert!(depth >= 2);
        let arrays = depth - 1;
        let mut t = Vec::with_capacity(5 * depth + 2);
        t.extend_from_slice(&((2 + 5 * arrays) as u32).to_be_bytes());
        t.extend_from_slice(b"\x01a");
        for level in 0..arrays {
            t.push(b'A');
            t.extend_from_slice(&((5 * (arrays - 1 - level)) as u32).to_be_bytes());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{nested_arrays, nested_tables};
    use super::*;

    /// One of every tag, a nested table and an array, a duplicate key and
    /// a key that is not UTF-8 (RabbitMQ takes any bytes).
    fn sample() -> Vec<u8> {
        let mut t = Vec::new();
        let at = begin(&mut t);
        for (key, value) in [
            (&b"bool"[..], &b"t\x01"[..]),
            (b"b", b"b\xff"),
            (b"B", b"B\xff"),
            (b"s", b"s\x80\x00"),
            (b"u", b"u\xff\xff"),
            (b"I", b"I\xff\xff\xff\xfe"),
            (b"i", b"i\xff\xff\xff\xfe"),
            (b"l", b"l\xff\xff\xff\xff\xff\xff\xff\xfd"),
            (b"L", b"L\x00\x00\x00\x00\x00\x00\x00\x07"),
            (b"f", b"f\x3f\x80\x00\x00"),
            (b"d", b"d\x3f\xf0\x00\x00\x00\x00\x00\x00"),
            (b"D", b"D\x02\x00\x00\x01\x00"),
            (b"T", b"T\x00\x00\x00\x00\x65\x00\x00\x00"),
            (b"V", b"V"),
            (b"S", b"S\x00\x00\x00\x03abc"),
            (b"x", b"x\x00\x00\x00\x02\x00\xff"),
            (b"A", b"A\x00\x00\x00\x09S\x00\x00\x00\x01kt\x00V"),
            (b"F", b"F\x00\x00\x00\x03\x01kV"),
            (b"S", b"S\x00\x00\x00\x00"),
            (b"\xff\xfe", b"V"),
        ] {
            put_key(&mut t, key);
            t.extend_from_slice(value);
        }
        finish(&mut t, at);
        t
    }

    #[test]
    fn walks_every_tag_and_reports_size_and_depth() {
        let t = sample();
        assert_eq!(walk_table(&t, usize::MAX), Ok(Walk { len: t.len(), depth: 2 }));
        // Bytes after the table are not part of it.
        let mut more = t.clone();
        more.extend_from_slice(b"trailing");
        assert_eq!(walk_table(&more, usize::MAX).map(|w| w.len), Ok(t.len()));
        assert_eq!(walk_table(&[0, 0, 0, 0], 1), Ok(Walk { len: 4, depth: 1 }));
        assert_eq!(walk_value(b'l', &[0; 8], 0), Ok(Walk { len: 8, depth: 0 }));
    }

    #[test]
    fn every_prefix_of_a_valid_table_is_incomplete() {
        for t in [sample(), nested_tables(5), nested_arrays(5)] {
            for cut in 0..t.len() {
                assert_eq!(walk_table(&t[..cut], usize::MAX), Err(TableError::Incomplete), "prefix {cut}");
            }
        }
        let v = [b'S', 0, 0, 0, 2, b'h', b'i'];
        for cut in 1..v.len() {
            assert_eq!(walk_value(b'S', &v[1..cut], usize::MAX), Err(TableError::Incomplete));
        }
        assert_eq!(walk_value(b'l', &[0; 7], usize::MAX), Err(TableError::Incomplete));
    }

    #[test]
    fn malformed_tables_are_refused_where_they_break() {
        let table = |body: &[u8]| {
            let mut t = (body.len() as u32).to_be_bytes().to_vec();
            t.extend_from_slice(body);
            t
        };
        let bad = |body: &[u8]| walk_table(&table(body), usize::MAX);
        // Unknown tags, including the spec's 'U' that RabbitMQ refuses.
        assert_eq!(bad(b"\x01kZ"), Err(TableError::Malformed { at: 6 }));
        assert_eq!(bad(b"\x01kU\x00\x00"), Err(TableError::Malformed { at: 6 }));
        // A key with no value; a key longer than the table.
        assert_eq!(bad(b"\x01k"), Err(TableError::Malformed { at: 6 }));
        assert!(matches!(bad(b"\x09k"), Err(TableError::Malformed { .. })));
        // A fixed-size value cut by the end of the table.
        assert!(matches!(bad(b"\x01kl\x00\x00"), Err(TableError::Malformed { .. })));
        // A long string, a nested table and an array claiming more than the table holds.
        assert!(matches!(bad(b"\x01kS\x00\x00\x00\x09ab"), Err(TableError::Malformed { .. })));
        assert!(matches!(bad(b"\x01kF\x00\x00\x00\x09ab"), Err(TableError::Malformed { .. })));
        assert!(matches!(bad(b"\x01kA\x00\x00\x00\x09ab"), Err(TableError::Malformed { .. })));
        assert!(matches!(bad(b"\x01kF\x00\x00"), Err(TableError::Malformed { .. })));
        // A nested table whose entries overrun its own length, though the outer table has room.
        assert!(matches!(bad(b"\x01kF\x00\x00\x00\x02\x01jV\x01mV"), Err(TableError::Malformed { .. })));
        // Inside an array: a bad tag, a value cut short.
        assert!(matches!(bad(b"\x01kA\x00\x00\x00\x01Z"), Err(TableError::Malformed { .. })));
        assert!(matches!(bad(b"\x01kA\x00\x00\x00\x02s\x00"), Err(TableError::Malformed { .. })));
        // A length prefix near u32::MAX with little data is incomplete, not a panic.
        assert_eq!(walk_table(&[0xff, 0xff, 0xff, 0xff, 1], usize::MAX), Err(TableError::Incomplete));
        assert!(matches!(bad(b"\x01kS\xff\xff\xff\xff"), Err(TableError::Malformed { .. })));
        assert_eq!(walk_value(b'U', &[0, 0], usize::MAX), Err(TableError::Malformed { at: 0 }));
    }

    #[test]
    fn depth_counts_tables_and_arrays_and_stops_at_the_limit() {
        assert_eq!(walk_table(&nested_tables(1), usize::MAX).unwrap().depth, 1);
        assert_eq!(walk_table(&nested_tables(7), usize::MAX).unwrap().depth, 7);
        assert_eq!(walk_table(&nested_arrays(7), usize::MAX).unwrap().depth, 7);
        let t = nested_tables(MAX_DECODE_DEPTH);
        assert_eq!(walk_table(&t, MAX_DECODE_DEPTH).unwrap().depth, MAX_DECODE_DEPTH);
        let t = nested_tables(MAX_DECODE_DEPTH + 1);
        assert!(matches!(walk_table(&t, MAX_DECODE_DEPTH), Err(TableError::TooDeep { .. })));
        assert_eq!(walk_table(&t, 0), Err(TableError::TooDeep { at: 0 }));
        // The depth of a sibling does not add to the next one's.
        let mut two = Vec::new();
        let at = begin(&mut two);
        for _ in 0..2 {
            put_key(&mut two, b"n");
            two.push(b'F');
            two.extend(nested_tables(3));
        }
        finish(&mut two, at);
        assert_eq!(walk_table(&two, 4).unwrap().depth, 4);
        assert!(decode_table(&nested_tables(MAX_DECODE_DEPTH)).is_ok());
        assert!(matches!(decode_table(&nested_tables(MAX_DECODE_DEPTH + 1)), Err(TableError::TooDeep { .. })));
    }

    #[test]
    fn a_table_100k_deep_walks_in_a_small_stack() {
        // 64 KiB of stack: a recursive walk would need megabytes here.
        let run = || {
            let tables = nested_tables(100_000);
            let arrays = nested_arrays(100_000);
            let w = walk_table(&tables, usize::MAX).unwrap();
            assert_eq!((w.len, w.depth), (tables.len(), 100_000));
            assert_eq!(walk_table(&arrays, usize::MAX).unwrap().depth, 100_000);
            assert!(matches!(walk_table(&tables, MAX_DECODE_DEPTH), Err(TableError::TooDeep { .. })));
            assert!(matches!(decode_table(&arrays), Err(TableError::TooDeep { .. })));
            // One level at a time is constant work: iterate, find, edit.
            let body = table_body(&tables).unwrap();
            assert_eq!(entries(body).count(), 1);
            let mut out = Vec::new();
            write_edited(body, &[Edit::Set(b"x-delivery-count", b"l\0\0\0\0\0\0\0\x01")], &mut out).unwrap();
            assert_eq!(&out[4..4 + body.len()], body);
            assert_eq!(walk_table(&out, usize::MAX).unwrap().depth, 100_000);
        };
        std::thread::Builder::new().stack_size(64 * 1024).spawn(run).unwrap().join().unwrap();
    }

    #[test]
    fn entries_keep_wire_order_and_duplicates() {
        let t = sample();
        let body = table_body(&t).unwrap();
        let keys: Vec<&[u8]> = entries(body).map(|e| e.unwrap().key).collect();
        assert_eq!(keys.len(), 20);
        assert_eq!(keys[0], b"bool");
        assert_eq!(keys[14], b"S");
        assert_eq!(keys[18], b"S");
        // find takes the first of duplicate keys, as RabbitMQ does.
        let s = find(body, b"S").unwrap();
        assert_eq!(long_string(s.tag, s.value), Some(&b"abc"[..]));
        assert_eq!(find(body, b"nope"), None);
        let a = find(body, b"A").unwrap();
        let elems: Vec<u8> = items(array_value(a.tag, a.value).unwrap()).map(|i| i.unwrap().tag).collect();
        assert_eq!(elems, b"StV");
        // The raw entries put back together are the body.
        let joined: Vec<u8> = entries(body).flat_map(|e| e.unwrap().raw.to_vec()).collect();
        assert_eq!(joined, body);
        // A broken entry ends iteration with one error.
        let mut it = entries(b"\x01kV\x01jZ");
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(TableError::Malformed { at: 3 })));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn integers_of_every_width() {
        let t = sample();
        let body = table_body(&t).unwrap();
        let n = |k: &[u8]| find(body, k).and_then(|e| integer(e.tag, e.value));
        assert_eq!(n(b"b"), Some(-1));
        assert_eq!(n(b"B"), Some(255));
        assert_eq!(n(b"s"), Some(-32768));
        assert_eq!(n(b"u"), Some(65535));
        assert_eq!(n(b"I"), Some(-2));
        assert_eq!(n(b"i"), Some(4294967294));
        assert_eq!(n(b"l"), Some(-3));
        assert_eq!(n(b"L"), Some(7));
        assert_eq!(n(b"T"), Some(0x6500_0000));
        assert_eq!(n(b"S"), None);
    }

    #[test]
    fn edits_touch_only_what_they_name() {
        let mut t = Vec::new();
        let at = begin(&mut t);
        for (k, v) in
            [(&b"BCC"[..], &b"V"[..]), (b"k", b"t\x01"), (b"BCC", b"V"), (b"n", b"l\0\0\0\0\0\0\0\x01"), (b"n", b"V")]
        {
            put_key(&mut t, k);
            t.extend_from_slice(v);
        }
        finish(&mut t, at);
        let body = table_body(&t).unwrap();
        let mut one = Vec::new();
        put_long(&mut one, 2);
        let mut out = Vec::new();
        write_edited(body, &[Edit::Remove(b"BCC"), Edit::Set(b"n", &one), Edit::Set(b"new", b"V")], &mut out).unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = entries(table_body(&out).unwrap())
            .map(|e| e.unwrap())
            .map(|e| (e.key.to_vec(), [&[e.tag][..], e.value].concat()))
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"k".to_vec(), b"t\x01".to_vec()),
            (b"n".to_vec(), one.clone()),
            (b"n".to_vec(), b"V".to_vec()),
            (b"new".to_vec(), b"V".to_vec()),
        ];
        assert_eq!(got, want);
        // No edits: the same bytes.
        let mut same = Vec::new();
        write_edited(body, &[], &mut same).unwrap();
        assert_eq!(same, t);
    }

    #[test]
    fn decoding_agrees_with_amq_protocol_on_what_it_can_read() {
        // amq-protocol wants UTF-8 keys; everything else in `sample` it reads.
        let t = sample();
        assert_eq!(decode_table(&t), Err(TableError::Malformed { at: 0 }));
        let body = table_body(&t).unwrap();
        let mut utf8 = Vec::new();
        write_edited(body, &[Edit::Remove(b"\xff\xfe")], &mut utf8).unwrap();
        let decoded = decode_table(&utf8).unwrap();
        assert_eq!(decoded.inner().get("l"), Some(&AMQPValue::LongLongInt(-3)));
        assert_eq!(
            decoded.inner().get("S"),
            Some(&AMQPValue::LongString("".into())),
            "the map keeps the last duplicate"
        );
        let e = find(body, b"F").unwrap();
        assert!(matches!(decode_value(e.tag, e.value), Ok(AMQPValue::FieldTable(_))));
        assert_eq!(decode_value(b'I', &[0, 0, 0, 5]), Ok(AMQPValue::LongInt(5)));
        assert_eq!(decode_value(b'I', &[0, 0, 0]), Err(TableError::Incomplete));
    }
}
