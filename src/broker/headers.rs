//! Headers-exchange matching (`x-match` all / any / all-with-x / any-with-x),
//! with RabbitMQ's value comparison: numbers compare by value whatever their
//! wire width, a void binding value only asks that the header be present.
//!
//! The message side stays raw: its top-level headers are indexed once per
//! message, and only a header a binding names is decoded, only if it nests
//! no deeper than `MAX_DECODE_DEPTH`. A deeper one cannot equal a binding
//! value (binding arguments were decoded within that depth), so it simply
//! does not match, as in RabbitMQ, and is delivered untouched.

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::wire::table::{self, Entry};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XMatch {
    All,
    Any,
    AllWithX,
    AnyWithX,
}

/// Reads `x-match` from binding arguments. `None` means an invalid value,
/// which RabbitMQ refuses at bind time.
pub fn x_match(args: &FieldTable) -> Option<XMatch> {
    match args.inner().get("x-match") {
        None => Some(XMatch::All),
        Some(AMQPValue::LongString(s)) => parse_x_match(s.as_bytes()),
        Some(AMQPValue::ShortString(s)) => parse_x_match(s.as_str().as_bytes()),
        Some(_) => None,
    }
}

fn parse_x_match(s: &[u8]) -> Option<XMatch> {
    match s {
        b"all" => Some(XMatch::All),
        b"any" => Some(XMatch::Any),
        b"all-with-x" => Some(XMatch::AllWithX),
        b"any-with-x" => Some(XMatch::AnyWithX),
        _ => None,
    }
}

/// A message's headers, indexed for matching: the top-level entries of the
/// raw table, sorted by key. The sort is stable, so of duplicate keys the
/// first sent is found, as in RabbitMQ's sorted merge.
pub struct Headers<'a> {
    entries: Vec<Entry<'a>>,
}

impl<'a> Headers<'a> {
    /// Indexes a (well-formed) headers table body.
    pub fn new(body: &'a [u8]) -> Self {
        let mut entries: Vec<Entry<'a>> = table::entries(body).map_while(Result::ok).collect();
        entries.sort_by(|a, b| a.key.cmp(b.key));
        Headers { entries }
    }

    fn get(&self, key: &[u8]) -> Option<&Entry<'a>> {
        let i = self.entries.partition_point(|e| e.key < key);
        self.entries.get(i).filter(|e| e.key == key)
    }
}

/// Whether a message with `headers` matches a binding with `args`.
pub fn headers_match(args: &FieldTable, headers: Option<&Headers<'_>>) -> bool {
    let mode = x_match(args).unwrap_or(XMatch::All);
    let with_x = matches!(mode, XMatch::AllWithX | XMatch::AnyWithX);
    let all = matches!(mode, XMatch::All | XMatch::AllWithX);
    let mut any_matched = false;
    for (key, want) in args.inner() {
        if key.as_str() == "x-match" || (!with_x && key.as_str().starts_with("x-")) {
            continue;
        }
        let got = headers.and_then(|h| h.get(key.as_str().as_bytes()));
        let ok = match (want, got) {
            (_, None) => false,
            (AMQPValue::Void, Some(_)) => true,
            (w, Some(g)) => raw_value_equals(w, g),
        };
        if all && !ok {
            return false;
        }
        any_matched |= ok;
    }
    all || any_matched
}

/// `values_equal` against a raw header value, without decoding the common
/// cases (strings, integers); anything else is decoded within the depth
/// limit, and what cannot be decoded is not equal.
fn raw_value_equals(want: &AMQPValue, got: &Entry<'_>) -> bool {
    if let (Some(w), Some(g)) = (as_bytes(want), table::long_string(got.tag, got.value)) {
        return w == g;
    }
    if let (Some(w), Some(g)) = (as_int(want), table::integer(got.tag, got.value)) {
        return w == g;
    }
    match table::decode_value(got.tag, got.value) {
        Ok(g) => values_equal(want, &g),
        Err(_) => false,
    }
}

/// Erlang's `==` on decoded field values: integers of any width are equal by
/// value, strings by bytes.
fn values_equal(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (as_int(a), as_int(b)) {
        (Some(x), Some(y)) => return x == y,
        (Some(_), None) | (None, Some(_)) => return numeric_float(a) == numeric_float(b) && numeric_float(a).is_some(),
        _ => {}
    }
    match (as_bytes(a), as_bytes(b)) {
        (Some(x), Some(y)) => return x == y,
        (Some(_), None) | (None, Some(_)) => return false,
        _ => {}
    }
    a == b
}

/// A string field value (long or short string) as text.
pub fn as_text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// An integer field value of any width, as one number.
pub fn as_number(v: &AMQPValue) -> Option<i128> {
    as_int(v)
}

fn as_int(v: &AMQPValue) -> Option<i128> {
    Some(match *v {
        AMQPValue::ShortShortInt(i) => i as i128,
        AMQPValue::ShortShortUInt(i) => i as i128,
        AMQPValue::ShortInt(i) => i as i128,
        AMQPValue::ShortUInt(i) => i as i128,
        AMQPValue::LongInt(i) => i as i128,
        AMQPValue::LongUInt(i) => i as i128,
        AMQPValue::LongLongInt(i) => i as i128,
        AMQPValue::Timestamp(i) => i as i128,
        _ => return None,
    })
}

fn numeric_float(v: &AMQPValue) -> Option<f64> {
    match *v {
        AMQPValue::Float(f) => Some(f as f64),
        AMQPValue::Double(d) => Some(d),
        _ => as_int(v).map(|i| i as f64),
    }
}

fn as_bytes(v: &AMQPValue) -> Option<&[u8]> {
    match v {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::generation::gen_field_table;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }
    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(v.into())
    }
    /// The raw bytes a publisher would send for `t`.
    fn raw(t: &FieldTable) -> Vec<u8> {
        cookie_factory::gen_simple(gen_field_table(t), Vec::new()).unwrap()
    }
    fn matches(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
        let bytes = headers.map(raw);
        let indexed = bytes.as_ref().map(|b| Headers::new(table::table_body(b).unwrap()));
        headers_match(args, indexed.as_ref())
    }

    #[test]
    fn all_and_any() {
        let all = table(&[("x-match", s("all")), ("a", s("1")), ("b", AMQPValue::LongInt(2))]);
        let any = table(&[("x-match", s("any")), ("a", s("1")), ("b", AMQPValue::LongInt(2))]);
        let both = table(&[("a", s("1")), ("b", AMQPValue::ShortShortInt(2))]);
        let one = table(&[("a", s("1")), ("b", AMQPValue::LongInt(3))]);
        assert!(matches(&all, Some(&both)));
        assert!(!matches(&all, Some(&one)));
        assert!(matches(&any, Some(&one)));
        assert!(!matches(&any, Some(&table(&[("c", s("1"))]))));
        assert!(!matches(&any, None));
        // a binding with no non-x- keys: all matches everything, any nothing
        assert!(matches(&table(&[]), None));
        assert!(!matches(&table(&[("x-match", s("any"))]), Some(&both)));
    }

    #[test]
    fn void_means_present_and_x_keys_are_ignored_unless_asked() {
        let b = table(&[("a", AMQPValue::Void), ("x-k", s("v"))]);
        assert!(matches(&b, Some(&table(&[("a", s("anything"))]))));
        let bx = table(&[("x-match", s("all-with-x")), ("x-k", s("v"))]);
        assert!(!matches(&bx, Some(&table(&[]))));
        assert!(matches(&bx, Some(&table(&[("x-k", s("v"))]))));
    }

    #[test]
    fn numbers_by_value_tables_by_content_and_deep_values_never_equal() {
        let b = table(&[("n", AMQPValue::Double(2.0)), ("t", AMQPValue::FieldTable(table(&[("k", s("v"))])))]);
        let h = table(&[("n", AMQPValue::ShortUInt(2)), ("t", AMQPValue::FieldTable(table(&[("k", s("v"))])))]);
        assert!(matches(&b, Some(&h)));
        assert!(!matches(&b, Some(&table(&[("n", AMQPValue::ShortUInt(2)), ("t", s("v"))]))));
        // A header nested past the decode limit is compared without being decoded.
        let deep = crate::wire::table::tests_support::nested_tables(100_000);
        let mut body = Vec::new();
        table::put_key(&mut body, b"t");
        body.push(b'F');
        body.extend_from_slice(&deep);
        table::put_key(&mut body, b"n");
        body.extend_from_slice(b"u\x00\x02");
        let run = move || {
            let h = Headers::new(&body);
            assert!(!headers_match(&b, Some(&h)));
            let any = table(&[("x-match", s("any")), ("t", AMQPValue::Boolean(true)), ("n", AMQPValue::LongInt(2))]);
            assert!(headers_match(&any, Some(&h)));
            assert!(headers_match(&table(&[("t", AMQPValue::Void)]), Some(&h)));
        };
        std::thread::Builder::new().stack_size(128 * 1024).spawn(run).unwrap().join().unwrap();
    }

    #[test]
    fn the_first_of_duplicate_headers_is_compared() {
        let mut body = Vec::new();
        for v in ["1", "2"] {
            table::put_key(&mut body, b"a");
            table::put_long_string(&mut body, v.as_bytes());
        }
        let h = Headers::new(&body);
        assert!(headers_match(&table(&[("a", s("1"))]), Some(&h)));
        assert!(!headers_match(&table(&[("a", s("2"))]), Some(&h)));
    }
}
