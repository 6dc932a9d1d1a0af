//! Percent-decoding of names that arrive percent-encoded: an OAuth 2.0
//! scope's vhost, resource and routing-key segments (`%2F` is the vhost
//! `/`) and a binding's `properties_key` in the management API. Text in,
//! text out; no I/O.

/// Replaces every `%XX` (two hex digits, either case) by the byte it names
/// and leaves everything else as it is: a `%` not followed by two hex
/// digits stays literal, and `+` is not a space (this is not form
/// decoding). Bytes that are not UTF-8 once decoded become U+FFFD.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_percent_escapes_and_keeps_everything_else() {
        assert_eq!(decode("%2F"), "/");
        assert_eq!(decode("%2f"), "/", "either case");
        assert_eq!(decode("a%2Fb%2A"), "a/b*");
        assert_eq!(decode("%C3%A9t%C3%A9"), "été", "multi-byte UTF-8");
        assert_eq!(decode("plain-name_1.x"), "plain-name_1.x");
        assert_eq!(decode("a+b"), "a+b", "not form decoding");
        assert_eq!(decode(""), "");
        assert_eq!(decode("é%20é"), "é é", "non-ASCII input passes through");
    }

    #[test]
    fn a_percent_without_two_hex_digits_stays_literal() {
        for s in ["%", "%2", "a%", "a%2", "%zz", "%g0", "%0g", "100%"] {
            assert_eq!(decode(s), s);
        }
        assert_eq!(decode("%%41"), "%A");
        assert_eq!(decode("%2%41"), "%2A");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        assert_eq!(decode("%FF"), "\u{FFFD}");
        assert_eq!(decode("a%C3"), "a\u{FFFD}");
    }
}
