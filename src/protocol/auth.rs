//! SASL as AMQP 0-9-1 carries it in connection.start-ok: the PLAIN and
//! AMQPLAIN responses parsed into a user and a password. Checking them is
//! the broker's (`Broker::authenticate`, a constant-time comparison of the
//! password hash). EXTERNAL (rabbitmq_auth_mechanism_ssl) carries nothing:
//! the user is the one the TLS client certificate names, and it is offered
//! only on TLS listeners that verify client certificates.

use crate::wire::table;

/// The mechanisms we offer in connection.start, in RabbitMQ's order.
pub(super) const MECHANISMS: &[u8] = b"PLAIN AMQPLAIN";
/// The same, on a TLS listener that verifies client certificates.
pub(super) const MECHANISMS_WITH_EXTERNAL: &[u8] = b"PLAIN AMQPLAIN EXTERNAL";

/// What a start-ok's mechanism and response say.
pub(super) enum Credentials {
    /// A user and a password to check.
    Given { user: String, password: String },
    /// EXTERNAL: whoever the client certificate names.
    External,
    /// A known mechanism whose response does not parse.
    Malformed,
    /// A mechanism we do not offer.
    Unsupported,
}

/// Reads the credentials of `mechanism` out of `response`.
pub(super) fn credentials(mechanism: &[u8], response: &[u8], external_offered: bool) -> Credentials {
    let parsed = match mechanism {
        b"PLAIN" => parse_plain(response),
        b"AMQPLAIN" => parse_amqplain(response),
        b"EXTERNAL" if external_offered => return Credentials::External,
        _ => return Credentials::Unsupported,
    };
    match parsed {
        Some((user, password)) => Credentials::Given { user, password },
        None => Credentials::Malformed,
    }
}

/// PLAIN: `authzid \0 user \0 password`.
fn parse_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((String::from_utf8(user.to_vec()).ok()?, String::from_utf8(pass.to_vec()).ok()?))
}

/// AMQPLAIN: a field table without its length prefix, holding LOGIN and
/// PASSWORD as long strings (the first of each, as RabbitMQ reads them).
/// Walked iteratively and read one level deep: it arrives before login.
fn parse_amqplain(response: &[u8]) -> Option<(String, String)> {
    let mut login = None;
    let mut password = None;
    for entry in table::entries(response) {
        let e = entry.ok()?;
        table::walk_value(e.tag, e.value, usize::MAX).ok()?;
        let slot = match e.key {
            b"LOGIN" => &mut login,
            b"PASSWORD" => &mut password,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(table::long_string(e.tag, e.value));
        }
    }
    let text = |v: Option<Option<&[u8]>>| String::from_utf8(v??.to_vec()).ok();
    Some((text(login)?, text(password)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_amqplain_credentials() {
        assert_eq!(parse_plain(b"\0guest\0guest"), Some(("guest".into(), "guest".into())));
        assert_eq!(parse_plain(b"guest"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
        // LOGIN (S) "guest", PASSWORD (S) "pw"
        let mut t = Vec::new();
        for (k, v) in [("LOGIN", "guest"), ("PASSWORD", "pw")] {
            t.push(k.len() as u8);
            t.extend_from_slice(k.as_bytes());
            t.push(b'S');
            t.extend_from_slice(&(v.len() as u32).to_be_bytes());
            t.extend_from_slice(v.as_bytes());
        }
        assert_eq!(parse_amqplain(&t), Some(("guest".into(), "pw".into())));
        assert_eq!(parse_amqplain(&t[..5]), None);
        // Read one level deep, the first of duplicates, at any nesting,
        // on a small stack: it arrives before login.
        let mut deep = t.clone();
        deep.extend_from_slice(b"\x05LOGINS\x00\x00\x00\x01x\x04deepF");
        deep.extend(crate::wire::table::tests_support::nested_tables(100_000));
        let got = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || parse_amqplain(&deep))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got, Some(("guest".into(), "pw".into())));
        let mut bad = t.clone();
        bad.extend_from_slice(b"\x01kF\x00\x00\x00\x03\x01jZ");
        assert_eq!(parse_amqplain(&bad), None, "a malformed nested value");
    }
}
