//! TLS for the listeners (AMQPS, and HTTPS for the management API and
//! Prometheus), on rustls with its ring provider: TLS 1.2 and 1.3 only, no
//! OpenSSL.
//!
//! A [`TlsEndpoint`] holds one listener's settings and its current rustls
//! `ServerConfig` behind an `ArcSwap`: each accepted socket takes the config
//! of the moment, so a reload (SIGHUP, or the files changing on disk)
//! reaches new connections at once and leaves open ones alone. A reload that
//! fails keeps the old certificate and says why.
//!
//! Everything that can be wrong with the files (unreadable, no certificate,
//! a key that is not the certificate's, a certificate out of its validity
//! period, a CA file without certificates) is found when the config is
//! built, so `Server::start` refuses to start with one clear message rather
//! than failing handshakes later.
//!
//! [`login_name`] reads the user name out of a client certificate for the
//! EXTERNAL mechanism, as rabbitmq_auth_mechanism_ssl does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// A TLS listener's files and peer verification: RabbitMQ's `ssl_options`
/// (and `management.ssl.*`, `prometheus.ssl.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct TlsSettings {
    /// `certfile`: PEM, the server's certificate first, then its chain.
    pub cert: PathBuf,
    /// `keyfile`: PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `cacertfile`: the CAs a client certificate must chain to.
    pub ca: Option<PathBuf>,
    /// `verify = verify_peer`: ask clients for a certificate and check it.
    pub verify_peer: bool,
    /// `fail_if_no_peer_cert = true`: refuse a client without one.
    pub fail_if_no_peer_cert: bool,
    /// `versions.N`; empty: TLS 1.2 and 1.3.
    pub versions: Vec<TlsVersion>,
}

impl TlsSettings {
    /// A certificate and key, no peer verification, both TLS versions.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsSettings {
            cert: cert.into(),
            key: key.into(),
            ca: None,
            verify_peer: false,
            fail_if_no_peer_cert: false,
            versions: Vec::new(),
        }
    }

    /// Whether `suffix = value` of an `ssl_options`-style block (`suffix`
    /// is what follows `ssl_options.`) applied; `Err` for a value it cannot
    /// take. A key Warren ignores leaves `settings` as it was, so it alone
    /// does not ask for a TLS listener.
    pub(crate) fn apply_conf(settings: &mut Option<TlsSettings>, suffix: &str, value: &str) -> Result<bool, String> {
        let known = matches!(suffix, "certfile" | "keyfile" | "cacertfile" | "verify" | "fail_if_no_peer_cert")
            || suffix.starts_with("versions.");
        if !known {
            // Erlang's ssl options Warren has no use for (ciphers,
            // honor_cipher_order, depth, ...): rustls picks safe ones.
            return Ok(false);
        }
        let s = settings.get_or_insert_with(|| TlsSettings::new("", ""));
        match suffix {
            "certfile" => s.cert = PathBuf::from(value),
            "keyfile" => s.key = PathBuf::from(value),
            "cacertfile" => s.ca = Some(PathBuf::from(value)),
            "verify" => {
                s.verify_peer = match value {
                    "verify_peer" => true,
                    "verify_none" => false,
                    _ => return Err("expected verify_peer or verify_none".into()),
                }
            }
            "fail_if_no_peer_cert" => {
                s.fail_if_no_peer_cert = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("expected true or false".into()),
                }
            }
            v if v.starts_with("versions.") => {
                let version = match value {
                    "tlsv1.3" => TlsVersion::Tls13,
                    "tlsv1.2" => TlsVersion::Tls12,
                    "tlsv1.1" | "tlsv1" | "sslv3" => {
                        return Err("Warren speaks only TLS 1.2 and 1.3 (older versions are broken)".into())
                    }
                    _ => return Err("expected tlsv1.2 or tlsv1.3".into()),
                };
                if !s.versions.contains(&version) {
                    s.versions.push(version);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Where the EXTERNAL mechanism takes the user name from
/// (`ssl_cert_login_from`, `ssl_cert_login_san_type`, `ssl_cert_login_san_index`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum CertLogin {
    /// The subject as RabbitMQ writes it: `CN=alice,O=Example,C=US`.
    #[default]
    DistinguishedName,
    CommonName,
    /// The `index`th subject alternative name of `kind`.
    SubjectAltName {
        kind: SanKind,
        index: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SanKind {
    #[default]
    Dns,
    Ip,
    Email,
    Uri,
    OtherName,
}

impl SanKind {
    pub fn parse(s: &str) -> Option<SanKind> {
        Some(match s {
            "dns" => SanKind::Dns,
            "ip" => SanKind::Ip,
            "email" => SanKind::Email,
            "uri" => SanKind::Uri,
            "other_name" => SanKind::OtherName,
            _ => return None,
        })
    }
}

/// Why a TLS listener cannot be set up: names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

fn err(msg: impl Into<String>) -> TlsError {
    TlsError(msg.into())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("cannot read the {what} {}: {e}", path.display())))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("the {what} {} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(format!(
            "the {what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// Refuses a certificate outside its validity period at `now`.
fn check_validity(der: &[u8], path: &Path, now: SystemTime) -> Result<(), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| err(format!("the certificate in {} cannot be parsed: {e}", path.display())))?;
    let secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let now = x509_parser::time::ASN1Time::from_timestamp(secs).map_err(|e| err(e.to_string()))?;
    let validity = cert.validity();
    if validity.not_after < now {
        return Err(err(format!(
            "the certificate in {} expired on {}: renew it (or point certfile at the new one)",
            path.display(),
            validity.not_after
        )));
    }
    if validity.not_before > now {
        return Err(err(format!(
            "the certificate in {} is not valid before {}: check the clock or the certificate",
            path.display(),
            validity.not_before
        )));
    }
    Ok(())
}

/// When the first certificate in `path` stops being valid.
pub fn expires(path: &Path) -> Result<SystemTime, TlsError> {
    let certs = read_certs(path, "certificate file")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&certs[0])
        .map_err(|e| err(format!("the certificate in {} cannot be parsed: {e}", path.display())))?;
    let secs = cert.validity().not_after.timestamp();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}

/// `2027-01-31T12:00:00Z` (UTC; the civil date from days since the epoch,
/// as in Howard Hinnant's `civil_from_days`).
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Builds the rustls config `settings` describe, checking every file.
/// `alpn`: the protocols offered (`http/1.1` for HTTPS; none for AMQP).
pub fn server_config(settings: &TlsSettings, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let certs = read_certs(&settings.cert, "certificate file")?;
    check_validity(&certs[0], &settings.cert, SystemTime::now())?;
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| {
        err(format!("cannot read a private key from {}: {e} (expected PEM: PKCS#8, RSA or EC)", settings.key.display()))
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| err(format!("the private key in {} cannot be used: {e}", settings.key.display())))?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing_key).keys_match().map_err(|_| {
        err(format!(
            "the private key in {} does not belong to the certificate in {}: give the key the certificate was made for",
            settings.key.display(),
            settings.cert.display()
        ))
    })?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = if settings.versions.is_empty() {
        vec![&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        settings
            .versions
            .iter()
            .map(|v| match v {
                TlsVersion::Tls13 => &rustls::version::TLS13,
                TlsVersion::Tls12 => &rustls::version::TLS12,
            })
            .collect()
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| err(format!("TLS versions: {e}")))?;
    let builder = if settings.verify_peer {
        let ca = settings.ca.as_ref().ok_or_else(|| {
            err("ssl_options.verify = verify_peer needs ssl_options.cacertfile (--tls-ca): the CAs client certificates must chain to")
        })?;
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca, "CA file")? {
            roots
                .add(cert)
                .map_err(|e| err(format!("a certificate in the CA file {} is not usable: {e}", ca.display())))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if settings.fail_if_no_peer_cert { verifier } else { verifier.allow_unauthenticated() };
        builder.with_client_cert_verifier(
            verifier.build().map_err(|e| err(format!("client verification with {}: {e}", ca.display())))?,
        )
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| err(format!("the certificate {}: {e}", settings.cert.display())))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// One TLS listener's settings and current config.
pub struct TlsEndpoint {
    /// What the listener serves, for log lines ("AMQP", "management").
    name: &'static str,
    settings: TlsSettings,
    alpn: Vec<Vec<u8>>,
    current: ArcSwap<ServerConfig>,
}

impl TlsEndpoint {
    /// Loads the files now: an error here stops the start.
    pub fn new(name: &'static str, settings: TlsSettings, alpn: &[&[u8]]) -> Result<Arc<TlsEndpoint>, TlsError> {
        let config = server_config(&settings, alpn).map_err(|e| err(format!("{name} TLS: {e}")))?;
        Ok(Arc::new(TlsEndpoint {
            name,
            settings,
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            current: ArcSwap::from_pointee(config),
        }))
    }

    /// An acceptor with the config of the moment.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Reads the files again; on an error the old config stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let alpn: Vec<&[u8]> = self.alpn.iter().map(Vec::as_slice).collect();
        let config = server_config(&self.settings, &alpn)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        [Some(self.settings.cert.as_path()), Some(self.settings.key.as_path()), self.settings.ca.as_deref()]
            .into_iter()
            .flatten()
    }
}

/// How often the certificate files are looked at for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What a file looks like from outside: a change to any of these is a reason
/// to reload. Renewal tools replace files (a new inode) or rewrite them.
fn fingerprint(path: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// Reloads every endpoint's certificates on SIGHUP, and when their files
/// change on disk (checked every second: no inotify dependency, and it
/// works on every filesystem, including bind mounts of Kubernetes secrets).
pub(crate) async fn watch_certificates(endpoints: Vec<Arc<TlsEndpoint>>, mut stop: watch::Receiver<bool>) {
    if endpoints.is_empty() {
        return;
    }
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP ({e}); certificates reload only when their files change");
            None
        }
    };
    let snapshot = |e: &TlsEndpoint| e.files().map(fingerprint).collect::<Vec<_>>();
    let mut seen: Vec<_> = endpoints.iter().map(|e| snapshot(e)).collect();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            _ = stop.changed() => return,
        };
        for (endpoint, seen) in endpoints.iter().zip(seen.iter_mut()) {
            let now = snapshot(endpoint);
            if !forced && now == *seen {
                continue;
            }
            *seen = now;
            let why = if forced { "SIGHUP" } else { "its files changed" };
            match endpoint.reload() {
                Ok(()) => tracing::info!(
                    "{} TLS: reloaded the certificate {} ({why})",
                    endpoint.name,
                    endpoint.settings.cert.display()
                ),
                Err(e) => tracing::warn!(
                    "{} TLS: kept the previous certificate, the new one cannot be used ({why}): {e}",
                    endpoint.name
                ),
            }
        }
    }
}

/// The user name in a client certificate, per `from` (the EXTERNAL
/// mechanism's login). The error says what the certificate lacks.
pub fn login_name(der: &[u8], from: &CertLogin) -> Result<String, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the client certificate cannot be parsed: {e}"))?;
    match from {
        CertLogin::DistinguishedName => Ok(distinguished_name(cert.subject())),
        CertLogin::CommonName => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| attribute_text(cn.attr_value()))
            .ok_or_else(|| "the client certificate's subject has no common name (CN)".to_string()),
        CertLogin::SubjectAltName { kind, index } => {
            let names = cert
                .subject_alternative_name()
                .map_err(|e| format!("the client certificate's subjectAltName cannot be parsed: {e}"))?
                .map(|ext| ext.value.general_names.clone())
                .unwrap_or_default();
            let wanted: Vec<String> = names
                .iter()
                .filter_map(|n| match (kind, n) {
                    (SanKind::Dns, GeneralName::DNSName(s))
                    | (SanKind::Email, GeneralName::RFC822Name(s))
                    | (SanKind::Uri, GeneralName::URI(s)) => Some(s.to_string()),
                    (SanKind::Ip, GeneralName::IPAddress(b)) => ip_text(b),
                    (SanKind::OtherName, GeneralName::OtherName(_, value)) => other_name_text(value),
                    _ => None,
                })
                .collect();
            wanted.get(*index).cloned().ok_or_else(|| {
                format!(
                    "the client certificate has {} subject alternative name(s) of type {kind:?}, \
                     and ssl_cert_login_san_index is {index}",
                    wanted.len()
                )
            })
        }
    }
}

/// What the AMQP side needs of a finished TLS handshake: the login name
/// EXTERNAL would use and what the management API shows.
pub(crate) fn peer(
    conn: &rustls::ServerConnection,
    login: &CertLogin,
    external_offered: bool,
) -> crate::protocol::connection::TlsPeer {
    let cert = conn.peer_certificates().and_then(|c| c.first());
    let cert_login = match cert {
        Some(c) => login_name(c, login),
        None => Err("the client presented no certificate".to_owned()),
    };
    let names = cert.and_then(|c| {
        let (_, parsed) = x509_parser::parse_x509_certificate(c).ok()?;
        Some((distinguished_name(parsed.subject()), distinguished_name(parsed.issuer())))
    });
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "tlsv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "tlsv1.2",
        _ => "",
    };
    crate::protocol::connection::TlsPeer {
        external_offered,
        cert_login,
        info: crate::broker::registry::TlsInfo {
            protocol: protocol.to_owned(),
            cipher: conn.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).unwrap_or_default().to_owned(),
            peer_cert_subject: names.as_ref().map(|n| n.0.clone()),
            peer_cert_issuer: names.map(|n| n.1),
        },
    }
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// An otherName's value is `[0] EXPLICIT` around, usually, a UTF8String.
fn other_name_text(value: &[u8]) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::{Any, Class, FromDer};
    let (_, mut any) = Any::from_der(value).ok()?;
    if any.class() == Class::ContextSpecific {
        any = Any::from_der(any.data).ok()?.1;
    }
    std::str::from_utf8(any.data).ok().map(str::to_owned)
}

fn attribute_text(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<String> {
    value.as_str().ok().map(str::to_owned).or_else(|| std::str::from_utf8(value.data).ok().map(str::to_owned))
}

/// The subject as RabbitMQ's rabbit_cert_info formats it: the RDNs in
/// reverse order (most specific first), joined by commas, values escaped
/// as RFC 4514 says.
fn distinguished_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type();
                    let key = short_name(&oid.to_id_string()).map(str::to_owned).unwrap_or_else(|| oid.to_id_string());
                    let value = attribute_text(attr.attr_value()).unwrap_or_default();
                    format!("{key}={}", escape_rdn_value(&value))
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.12" => "T",
        "2.5.4.42" => "GN",
        "2.5.4.4" => "SN",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "EMAILADDRESS",
        _ => return None,
    })
}

fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') || edge_space || (i == 0 && c == '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn cert_with(subject: &[(DnType, &str)], sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for (t, v) in subject {
            dn.push(t.clone(), *v);
        }
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.self_signed(&KeyPair::generate().unwrap()).unwrap().der().to_vec()
    }

    #[test]
    fn login_names_come_from_the_subject_or_a_san_as_rabbitmq_reads_them() {
        let der = cert_with(
            &[(DnType::CountryName, "US"), (DnType::OrganizationName, "Acme, Inc"), (DnType::CommonName, "alice")],
            vec![
                SanType::DnsName("a.example".try_into().unwrap()),
                SanType::Rfc822Name("alice@example.com".try_into().unwrap()),
                SanType::DnsName("b.example".try_into().unwrap()),
                SanType::IpAddress("10.0.0.7".parse().unwrap()),
            ],
        );
        assert_eq!(login_name(&der, &CertLogin::DistinguishedName).unwrap(), "CN=alice,O=Acme\\, Inc,C=US");
        assert_eq!(login_name(&der, &CertLogin::CommonName).unwrap(), "alice");
        let san = |kind, index| login_name(&der, &CertLogin::SubjectAltName { kind, index });
        assert_eq!(san(SanKind::Dns, 0).unwrap(), "a.example");
        assert_eq!(san(SanKind::Dns, 1).unwrap(), "b.example");
        assert_eq!(san(SanKind::Email, 0).unwrap(), "alice@example.com");
        assert_eq!(san(SanKind::Ip, 0).unwrap(), "10.0.0.7");
        assert!(san(SanKind::Dns, 2).unwrap_err().contains("ssl_cert_login_san_index is 2"));
        assert!(san(SanKind::Uri, 0).is_err());
        let no_cn = cert_with(&[(DnType::OrganizationName, "Acme")], vec![]);
        assert!(login_name(&no_cn, &CertLogin::CommonName).unwrap_err().contains("no common name"));
        assert!(login_name(b"garbage", &CertLogin::CommonName).is_err());
    }

    #[test]
    fn times_print_as_rfc3339() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_798_761_599)), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn rdn_values_are_escaped() {
        assert_eq!(escape_rdn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rdn_value(" lead"), "\\ lead");
        assert_eq!(escape_rdn_value("#x"), "\\#x");
        assert_eq!(escape_rdn_value("plain"), "plain");
    }

    #[test]
    fn conf_keys_fill_settings_and_refuse_old_versions() {
        let mut s = None;
        for (k, v) in [
            ("certfile", "/c.pem"),
            ("keyfile", "/k.pem"),
            ("cacertfile", "/ca.pem"),
            ("verify", "verify_peer"),
            ("fail_if_no_peer_cert", "true"),
            ("versions.1", "tlsv1.3"),
        ] {
            assert!(TlsSettings::apply_conf(&mut s, k, v).unwrap());
        }
        let s2 = s.clone().unwrap();
        assert_eq!(
            (s2.cert.to_str(), s2.key.to_str(), s2.ca.as_deref().and_then(Path::to_str)),
            (Some("/c.pem"), Some("/k.pem"), Some("/ca.pem"))
        );
        assert!(s2.verify_peer && s2.fail_if_no_peer_cert);
        assert_eq!(s2.versions, vec![TlsVersion::Tls13]);
        assert!(TlsSettings::apply_conf(&mut s, "versions.2", "tlsv1.1").unwrap_err().contains("only TLS 1.2 and 1.3"));
        assert!(TlsSettings::apply_conf(&mut s, "verify", "yes").is_err());
        assert!(!TlsSettings::apply_conf(&mut s, "honor_cipher_order", "true").unwrap());
        let mut none = None;
        assert!(!TlsSettings::apply_conf(&mut none, "depth", "2").unwrap());
        assert!(none.is_none(), "an ignored key alone asks for no TLS listener");
    }
}
