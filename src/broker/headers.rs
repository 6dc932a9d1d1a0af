//! Headers-exchange matching (`x-match` all / any / all-with-x / any-with-x),
//! with RabbitMQ's value comparison: numbers compare by value whatever their
//! wire width, a void binding value only asks that the header be present.

use amq_protocol::types::{AMQPValue, FieldTable};

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

/// Whether a message with `headers` matches a binding with `args`.
pub fn headers_match(args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let mode = x_match(args).unwrap_or(XMatch::All);
    let with_x = matches!(mode, XMatch::AllWithX | XMatch::AnyWithX);
    let all = matches!(mode, XMatch::All | XMatch::AllWithX);
    let mut any_matched = false;
    for (key, want) in args.inner() {
        if key.as_str() == "x-match" || (!with_x && key.as_str().starts_with("x-")) {
            continue;
        }
        let got = headers.and_then(|h| h.inner().get(key.as_str()));
        let ok = match (want, got) {
            (_, None) => false,
            (AMQPValue::Void, Some(_)) => true,
            (w, Some(g)) => values_equal(w, g),
        };
        if all && !ok {
            return false;
        }
        any_matched |= ok;
    }
    all || any_matched
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

/// A copy of `t` without the keys `drop` picks (BCC before delivery, CC
/// when a dead-letter routing key replaces the original keys).
pub fn without_keys(t: &FieldTable, drop: impl Fn(&str) -> bool) -> FieldTable {
    let mut out = FieldTable::default();
    for (k, v) in t.inner() {
        if !drop(k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
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

    #[test]
    fn all_and_any() {
        let all = table(&[("x-match", s("all")), ("a", s("1")), ("b", AMQPValue::LongInt(2))]);
        let any = table(&[("x-match", s("any")), ("a", s("1")), ("b", AMQPValue::LongInt(2))]);
        let both = table(&[("a", s("1")), ("b", AMQPValue::ShortShortInt(2))]);
        let one = table(&[("a", s("1")), ("b", AMQPValue::LongInt(3))]);
        assert!(headers_match(&all, Some(&both)));
        assert!(!headers_match(&all, Some(&one)));
        assert!(headers_match(&any, Some(&one)));
        assert!(!headers_match(&any, Some(&table(&[("c", s("1"))]))));
        assert!(!headers_match(&any, None));
        // a binding with no non-x- keys: all matches everything, any nothing
        assert!(headers_match(&table(&[]), None));
        assert!(!headers_match(&table(&[("x-match", s("any"))]), Some(&both)));
    }

    #[test]
    fn void_means_present_and_x_keys_are_ignored_unless_asked() {
        let b = table(&[("a", AMQPValue::Void), ("x-k", s("v"))]);
        assert!(headers_match(&b, Some(&table(&[("a", s("anything"))]))));
        let bx = table(&[("x-match", s("all-with-x")), ("x-k", s("v"))]);
        assert!(!headers_match(&bx, Some(&table(&[]))));
        assert!(headers_match(&bx, Some(&table(&[("x-k", s("v"))]))));
    }
}
