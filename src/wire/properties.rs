//! The basic class's content-header property list as raw bytes: a 16-bit
//! flag word, then each present property in flag order (AMQP 0-9-1 §4.2.6.1
//! and the basic class). [`PropertyScan`] finds where each property sits
//! without decoding anything (the headers table is skipped by its length),
//! and [`rewrite`] replaces or removes properties copying every other byte,
//! so a delivery carries the publisher's bytes, nested headers included.

use std::ops::Range;

use super::table::{self, TableError};

/// The basic class's properties, in wire order (flag bit 15 down to 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    ContentType,
    ContentEncoding,
    Headers,
    DeliveryMode,
    Priority,
    CorrelationId,
    ReplyTo,
    Expiration,
    MessageId,
    Timestamp,
    Type,
    UserId,
    AppId,
    ClusterId,
}

/// Every property, in the order the list carries them.
pub(crate) const ORDER: [Property; 14] = [
    Property::ContentType,
    Property::ContentEncoding,
    Property::Headers,
    Property::DeliveryMode,
    Property::Priority,
    Property::CorrelationId,
    Property::ReplyTo,
    Property::Expiration,
    Property::MessageId,
    Property::Timestamp,
    Property::Type,
    Property::UserId,
    Property::AppId,
    Property::ClusterId,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    ShortString,
    Table,
    Octet,
    LongLong,
}

impl Property {
    /// Its bit in the flag word.
    pub const fn flag(self) -> u16 {
        1 << (15 - self as u16)
    }

    fn layout(self) -> Layout {
        match self {
            Property::Headers => Layout::Table,
            Property::DeliveryMode | Property::Priority => Layout::Octet,
            Property::Timestamp => Layout::LongLong,
            _ => Layout::ShortString,
        }
    }
}

pub(crate) const FLAG_HEADERS: u16 = Property::Headers.flag();
/// Bit 0 says another flag word follows; the basic class has too few
/// properties to need one, and RabbitMQ refuses a list that sets it.
const FLAG_CONTINUATION: u16 = 1;

/// Where each property sits in a raw property list, found by skipping over
/// values by their lengths: no allocation, no decode.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PropertyScan {
    pub flags: u16,
    /// Start and end of each present property's encoding (its length octet
    /// or prefix included), by position in [`ORDER`]; `(0, 0)` if absent.
    spans: [(u32, u32); 14],
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    /// The bytes are not a property list: too short, a property running
    /// past the end, bytes after the last one, or the continuation bit.
    /// The spans hold what was found before that point. RabbitMQ closes the
    /// connection with 541 INTERNAL_ERROR when a publish carries such a list.
    pub malformed: bool,
}

impl PropertyScan {
    /// Scans `props` (the content header after class, weight and body size).
    pub fn new(props: &[u8]) -> Self {
        let mut out = PropertyScan::default();
        let (Some(&a), Some(&b)) = (props.first(), props.get(1)) else {
            out.malformed = true;
            return out;
        };
        out.flags = u16::from_be_bytes([a, b]);
        if out.flags & FLAG_CONTINUATION != 0 || props.len() > u32::MAX as usize {
            out.malformed = true;
            return out;
        }
        let mut at = 2usize;
        for (i, p) in ORDER.iter().enumerate() {
            if out.flags & p.flag() == 0 {
                continue;
            }
            let len = match p.layout() {
                Layout::Octet => Some(1),
                Layout::LongLong => Some(8),
                Layout::ShortString => props.get(at).map(|&n| 1 + n as usize),
                Layout::Table => {
                    props.get(at..at + 4).map(|l| 4 + u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
                }
            };
            let end = match len.map(|n| at + n) {
                Some(end) if end <= props.len() => end,
                _ => {
                    out.malformed = true;
                    break;
                }
            };
            out.spans[i] = (at as u32, end as u32);
            match p {
                Property::DeliveryMode => out.delivery_mode = Some(props[at]),
                Property::Priority => out.priority = Some(props[at]),
                _ => {}
            }
            at = end;
        }
        if at != props.len() {
            out.malformed = true;
        }
        out
    }

    /// Where property `p`'s value sits: a short string without its length
    /// octet, the headers table *with* its length prefix, an octet, the
    /// 8-byte timestamp. `None` if absent (or past a malformed point).
    pub fn range(&self, p: Property) -> Option<Range<usize>> {
        let (start, end) = self.spans[p as usize];
        if end == 0 {
            return None;
        }
        let start = if p.layout() == Layout::ShortString { start + 1 } else { start };
        Some(start as usize..end as usize)
    }

    /// Property `p`'s value bytes in `props` (the bytes this scanned), as
    /// [`PropertyScan::range`] delimits them.
    pub fn get<'a>(&self, props: &'a [u8], p: Property) -> Option<&'a [u8]> {
        props.get(self.range(p)?)
    }

    /// The headers table's entries (after its length prefix), for
    /// `table::entries` and `table::find`.
    pub fn headers<'a>(&self, props: &'a [u8]) -> Option<&'a [u8]> {
        self.get(props, Property::Headers).and_then(|t| t.get(4..))
    }

    /// Checks the whole property list as RabbitMQ does when a publish
    /// arrives: the list itself, and every nested value of the headers
    /// table at any depth (an iterative walk, no depth limit: deep headers
    /// are valid and travel on untouched).
    pub fn check(&self, props: &[u8]) -> Result<(), TableError> {
        if self.malformed {
            return Err(TableError::Malformed { at: 0 });
        }
        match self.get(props, Property::Headers) {
            Some(t) => table::walk_table(t, usize::MAX).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// Encodes a short-string property value (length octet and bytes), or
/// `None` if it is over 255 bytes.
pub(crate) fn short_string(s: &[u8]) -> Option<Vec<u8>> {
    let n = u8::try_from(s.len()).ok()?;
    let mut v = Vec::with_capacity(1 + s.len());
    v.push(n);
    v.extend_from_slice(s);
    Some(v)
}

/// A property and its new encoding (`None`: remove it), for [`rewrite`].
pub(crate) type PropertyEdit<'a> = (Property, Option<&'a [u8]>);

/// `props` with each property in `edits` replaced by its new encoding (as
/// on the wire: a short string with its length octet, the headers table
/// with its length prefix) or removed (`None`), and the flag word to match.
/// Every other byte is copied as it was. `None` if `scan` (which must be the
/// scan of `props`) found the list malformed: it cannot be rewritten
/// without losing what follows the break.
pub(crate) fn rewrite(props: &[u8], scan: &PropertyScan, edits: &[PropertyEdit<'_>]) -> Option<Vec<u8>> {
    if scan.malformed {
        return None;
    }
    let mut flags = scan.flags;
    let mut size = props.len();
    for (p, value) in edits {
        size += value.map_or(0, <[u8]>::len);
        match value {
            Some(_) => flags |= p.flag(),
            None => flags &= !p.flag(),
        }
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&flags.to_be_bytes());
    for (i, p) in ORDER.iter().enumerate() {
        if let Some((_, value)) = edits.iter().find(|(q, _)| q == p) {
            if let Some(v) = value {
                out.extend_from_slice(v);
            }
            continue;
        }
        let (start, end) = scan.spans[i];
        if end != 0 {
            out.extend_from_slice(&props[start as usize..end as usize]);
        }
    }
    Some(out)
}

/// `props` with the headers table edited by `edits` (created if there was
/// none and an edit sets something) and the properties in `others` changed
/// as [`rewrite`] does. Every header no edit names keeps its bytes and its
/// place. `None` if the list or its headers table is malformed.
pub(crate) fn edit_headers(
    props: &[u8],
    scan: &PropertyScan,
    edits: &[table::Edit<'_>],
    others: &[PropertyEdit<'_>],
) -> Option<Vec<u8>> {
    let headers = scan.headers(props);
    let mut table_bytes = Vec::new();
    let mut all: smallvec::SmallVec<[PropertyEdit<'_>; 3]> = others.iter().copied().collect();
    if headers.is_some() || edits.iter().any(|e| matches!(e, table::Edit::Set(..))) {
        table::write_edited(headers.unwrap_or_default(), edits, &mut table_bytes).ok()?;
        all.push((Property::Headers, Some(&table_bytes)));
    }
    rewrite(props, scan, &all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic::{gen_properties, parse_properties, AMQPProperties};
    use amq_protocol::types::{AMQPValue, FieldTable};

    fn raw(p: &AMQPProperties) -> Vec<u8> {
        cookie_factory::gen_simple(gen_properties(p), Vec::new()).unwrap()
    }

    fn full() -> AMQPProperties {
        let mut headers = FieldTable::default();
        headers.insert("k".into(), AMQPValue::LongString("v".into()));
        AMQPProperties::default()
            .with_content_type("text/plain".into())
            .with_content_encoding("gzip".into())
            .with_headers(headers)
            .with_delivery_mode(2)
            .with_priority(7)
            .with_correlation_id("c".into())
            .with_reply_to("r".into())
            .with_expiration("1000".into())
            .with_message_id("m".into())
            .with_timestamp(0x0102_0304_0506_0708)
            .with_type("t".into())
            .with_user_id("guest".into())
            .with_app_id("a".into())
            .with_cluster_id("cl".into())
    }

    fn shortstr(p: &PropertyScan, raw: &[u8], which: Property) -> Option<String> {
        p.get(raw, which).map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn scan_agrees_with_a_full_decode() {
        let cases = [
            AMQPProperties::default(),
            AMQPProperties::default().with_delivery_mode(2),
            AMQPProperties::default().with_reply_to("amq.rabbitmq.reply-to".into()).with_user_id("u".into()),
            AMQPProperties::default().with_expiration("60000".into()).with_cluster_id("c".into()),
            full(),
        ];
        for p in cases {
            let bytes = raw(&p);
            let s = PropertyScan::new(&bytes);
            assert!(!s.malformed, "{p:?}");
            assert!(s.check(&bytes).is_ok());
            assert_eq!(s.delivery_mode, *p.delivery_mode());
            assert_eq!(s.priority, *p.priority());
            let str_of = |v: &Option<amq_protocol::types::ShortString>| v.as_ref().map(|v| v.as_str().to_owned());
            assert_eq!(shortstr(&s, &bytes, Property::ContentType), str_of(p.content_type()));
            assert_eq!(shortstr(&s, &bytes, Property::ContentEncoding), str_of(p.content_encoding()));
            assert_eq!(shortstr(&s, &bytes, Property::CorrelationId), str_of(p.correlation_id()));
            assert_eq!(shortstr(&s, &bytes, Property::ReplyTo), str_of(p.reply_to()));
            assert_eq!(shortstr(&s, &bytes, Property::Expiration), str_of(p.expiration()));
            assert_eq!(shortstr(&s, &bytes, Property::MessageId), str_of(p.message_id()));
            assert_eq!(shortstr(&s, &bytes, Property::Type), str_of(p.kind()));
            assert_eq!(shortstr(&s, &bytes, Property::UserId), str_of(p.user_id()));
            assert_eq!(shortstr(&s, &bytes, Property::AppId), str_of(p.app_id()));
            assert_eq!(shortstr(&s, &bytes, Property::ClusterId), str_of(p.cluster_id()));
            let ts = s.get(&bytes, Property::Timestamp).map(|b| u64::from_be_bytes(b.try_into().unwrap()));
            assert_eq!(ts, *p.timestamp());
            let headers = s.get(&bytes, Property::Headers).map(|t| table::decode_table(t).unwrap());
            assert_eq!(headers.as_ref(), p.headers().as_ref());
        }
    }

    #[test]
    fn malformed_lists_are_flagged() {
        let good = raw(&full());
        // Every strict prefix is cut short (or, at 0 and 1 bytes, no flag word).
        for cut in 0..good.len() {
            assert!(PropertyScan::new(&good[..cut]).malformed, "prefix {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(PropertyScan::new(&trailing).malformed);
        assert!(PropertyScan::new(&[0, 0, b'z']).malformed);
        assert!(PropertyScan::new(&[0x80, 0x01, 0, 0, 2, b'a', b'b']).malformed, "continuation bit");
        // Reserved bit 1 is ignored, as RabbitMQ ignores it.
        assert!(!PropertyScan::new(&[0x80, 0x02, 2, b'a', b'b']).malformed);
        // What was found before the break is still there.
        let s = PropertyScan::new(&[0x90, 0, 1, b'a', 2]);
        assert!(!s.malformed);
        assert_eq!(s.delivery_mode, Some(2));
        let s = PropertyScan::new(&[0x90, 0, 1, b'a']);
        assert!(s.malformed);
        assert_eq!(s.get(&[0x90, 0, 1, b'a'], Property::ContentType), Some(&b"a"[..]));
        // A well-formed list with a malformed headers table fails only the full check.
        let bad_headers = [0x20, 0, 0, 0, 0, 3, 1, b'k', b'Z'];
        let s = PropertyScan::new(&bad_headers);
        assert!(!s.malformed);
        assert!(matches!(s.check(&bad_headers), Err(TableError::Malformed { .. })));
    }

    #[test]
    fn rewrite_replaces_and_removes_leaving_every_other_byte() {
        let p = full();
        let bytes = raw(&p);
        let s = PropertyScan::new(&bytes);
        let reply = short_string(b"amq.rabbitmq.reply-to.abc").unwrap();
        let out = rewrite(&bytes, &s, &[(Property::ReplyTo, Some(&reply)), (Property::Expiration, None)]).unwrap();
        let (_, back) = parse_properties(&out[..]).unwrap();
        let want = AMQPProperties::default()
            .with_content_type("text/plain".into())
            .with_content_encoding("gzip".into())
            .with_headers(p.headers().clone().unwrap())
            .with_delivery_mode(2)
            .with_priority(7)
            .with_correlation_id("c".into())
            .with_reply_to("amq.rabbitmq.reply-to.abc".into())
            .with_message_id("m".into())
            .with_timestamp(0x0102_0304_0506_0708)
            .with_type("t".into())
            .with_user_id("guest".into())
            .with_app_id("a".into())
            .with_cluster_id("cl".into());
        assert_eq!(back, want);
        // Adding a property that was absent, and no edits at all.
        let none = raw(&AMQPProperties::default().with_delivery_mode(1));
        let s = PropertyScan::new(&none);
        let mut headers = Vec::new();
        let at = table::begin(&mut headers);
        table::put_key(&mut headers, b"x-delivery-count");
        table::put_long(&mut headers, 3);
        table::finish(&mut headers, at);
        let out = rewrite(&none, &s, &[(Property::Headers, Some(&headers))]).unwrap();
        let (_, back) = parse_properties(&out[..]).unwrap();
        assert_eq!(back.delivery_mode(), &Some(1));
        assert_eq!(back.headers().as_ref().unwrap().inner().get("x-delivery-count"), Some(&AMQPValue::LongLongInt(3)));
        assert_eq!(rewrite(&bytes, &PropertyScan::new(&bytes), &[]).unwrap(), bytes);
        assert_eq!(rewrite(&[0x80], &PropertyScan::new(&[0x80]), &[]), None);
        assert_eq!(short_string(&[b'x'; 256]), None);
    }
}
