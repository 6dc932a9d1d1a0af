//! OAuth 2.0 access tokens as rabbitmq_auth_backend_oauth2 reads them: a
//! JWT given as the password, verified against the configured signing keys,
//! whose `aud` must name this resource server and whose scopes
//! (`<resource_server_id>.read:<vhost>/<name>[/<routing key>]`, `.write:`,
//! `.configure:`, `.tag:<tag>`) are the user's permissions for as long as it
//! is valid.
//!
//! Owns the key set and the verification; the permission check itself stays
//! in `permissions.rs` (a token's scopes become one compiled grant there).
//! Tokens are client input of any size and shape: every failure is a
//! `TokenError` with a reason for the log, never a panic, and neither the
//! token nor its signature is ever logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::wire::percent;

/// The `auth_oauth2.*` and `auth_backends.*` keys of rabbitmq.conf, as read;
/// the key files are opened by [`OAuth2::from_settings`] at start.
#[derive(Clone, Debug, Default)]
pub struct OAuth2Settings {
    /// `auth_backends.N = rabbit_auth_backend_oauth2` was given.
    pub enabled: bool,
    /// `auth_backends.N = internal` too (or no auth_backends at all): a
    /// password that is not a valid token is checked against the users.
    pub internal: bool,
    pub resource_server_id: String,
    /// The key for tokens whose header names no `kid`.
    pub default_key: Option<String>,
    /// `auth_oauth2.signing_keys.<kid> = <file>`: a PEM public key (RSA or
    /// EC P-256), or a JWK JSON with `"kty": "oct"` (HS256, for tests).
    pub signing_keys: BTreeMap<String, PathBuf>,
    /// A claim holding more scopes (Keycloak's `extra_scope`, say).
    pub additional_scopes_key: Option<String>,
    /// Claims the user name is taken from, first present wins; RabbitMQ's
    /// default is `sub`, then `client_id`.
    pub preferred_username_claims: Vec<String>,
}

impl OAuth2Settings {
    /// One rabbitmq.conf key of the oauth2 plugin (or `auth_backends.N`).
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        if key.starts_with("auth_backends.") {
            match value {
                "rabbit_auth_backend_oauth2" | "oauth2" => self.enabled = true,
                "internal" | "rabbit_auth_backend_internal" => self.internal = true,
                other => {
                    return Err(format!(
                        "unsupported auth backend '{other}' (Warren has internal and rabbit_auth_backend_oauth2)"
                    ))
                }
            }
            return Ok(());
        }
        let key = key.strip_prefix("auth_oauth2.").unwrap_or(key);
        match key {
            "resource_server_id" => self.resource_server_id = value.to_owned(),
            "default_key" => self.default_key = Some(value.to_owned()),
            "additional_scopes_key" => self.additional_scopes_key = Some(value.to_owned()),
            k if k.starts_with("preferred_username_claims.") => self.preferred_username_claims.push(value.to_owned()),
            k if k.starts_with("signing_keys.") => {
                let kid = &k["signing_keys.".len()..];
                self.signing_keys.insert(kid.to_owned(), PathBuf::from(value));
            }
            other => return Err(format!("auth_oauth2.{other} is not supported by Warren")),
        }
        Ok(())
    }
}

/// Longer than any token an identity provider issues; refused before parsing.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// A verified token: who it names and what it grants until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub username: String,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    pub scopes: Vec<Scope>,
    pub tags: Vec<String>,
}

/// One `read` / `write` / `configure` scope: wildcard patterns (`*` is any
/// run of characters) for the vhost, the resource name and, for topic
/// authorisation, the routing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub permission: super::permissions::Permission,
    pub vhost: String,
    pub resource: String,
    /// The third segment. `None` (a scope of two segments) grants no topic
    /// access at all, as in the plugin (`rabbit_oauth2_scope:topic_access`
    /// skips scopes without one): publishing to or binding from a topic
    /// exchange needs a scope such as `write:*/*/*`.
    pub routing_key: Option<String>,
}

/// Why a token was refused, for the log line (never for the client, which
/// gets RabbitMQ's generic refusal).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("no signing key '{0}' is configured (auth_oauth2.signing_keys.{0})")]
    UnknownKey(String),
    #[error("the token names no key (kid) and auth_oauth2.default_key is not set")]
    NoKey,
    #[error("the signature does not verify with key '{0}'")]
    BadSignature(String),
    #[error("aud does not contain '{0}' (auth_oauth2.resource_server_id)")]
    Audience(String),
    #[error("token expired at {exp} (validated at {now})")]
    Expired { exp: u64, now: u64 },
    #[error("token not valid before {nbf} (validated at {now})")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("no user name claim ({0}) in the token")]
    NoUsername(String),
}

struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The resource server's configuration with its keys loaded.
pub struct OAuth2 {
    pub resource_server_id: String,
    /// Also check passwords against the internal users.
    pub internal: bool,
    default_key: Option<String>,
    keys: BTreeMap<String, Key>,
    additional_scopes_key: Option<String>,
    username_claims: Vec<String>,
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of debug output.
        f.debug_struct("OAuth2")
            .field("resource_server_id", &self.resource_server_id)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl OAuth2 {
    /// Loads every signing key; `None` when the oauth2 backend is off. The
    /// error names the file and the key and says what was expected.
    pub fn from_settings(s: &OAuth2Settings) -> Result<Option<OAuth2>, String> {
        if !s.enabled {
            return Ok(None);
        }
        if s.resource_server_id.is_empty() {
            return Err(
                "auth_backends names rabbit_auth_backend_oauth2 but auth_oauth2.resource_server_id is not set".into()
            );
        }
        let mut keys = BTreeMap::new();
        for (kid, path) in &s.signing_keys {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("auth_oauth2.signing_keys.{kid}: cannot read {}: {e}", path.display()))?;
            let key = load_key(&bytes)
                .map_err(|why| format!("auth_oauth2.signing_keys.{kid} ({}): {why}", path.display()))?;
            keys.insert(kid.clone(), key);
        }
        if keys.is_empty() {
            return Err("rabbit_auth_backend_oauth2 needs at least one auth_oauth2.signing_keys.<kid> = <file>".into());
        }
        if let Some(d) = &s.default_key {
            if !keys.contains_key(d) {
                return Err(format!("auth_oauth2.default_key = {d}, but there is no auth_oauth2.signing_keys.{d}"));
            }
        }
        let username_claims = if s.preferred_username_claims.is_empty() {
            vec!["sub".to_owned(), "client_id".to_owned()]
        } else {
            s.preferred_username_claims.clone()
        };
        Ok(Some(OAuth2 {
            resource_server_id: s.resource_server_id.clone(),
            internal: s.internal,
            default_key: s.default_key.clone(),
            keys,
            additional_scopes_key: s.additional_scopes_key.clone(),
            username_claims,
        }))
    }

    /// Verifies a token at `now` (Unix seconds, from the broker's clock so
    /// tests can move it): signature, `aud`, `exp`, `nbf`; then reads the
    /// user name and the scopes meant for this resource server.
    pub fn verify(&self, token: &str, now: u64) -> Result<Token, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed(format!("{} bytes, more than {MAX_TOKEN_LEN}", token.len())));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let kid = match header.kid.or_else(|| self.default_key.clone()) {
            Some(k) => k,
            None => return Err(TokenError::NoKey),
        };
        let key = self.keys.get(&kid).ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
        // The key decides the algorithm, never the token's header: a token
        // cannot pick HS256 to have an RSA public key used as a secret.
        let mut v = Validation::new(key.algorithm);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Value>(token, &key.key, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                TokenError::BadSignature(kid.clone())
            }
            _ => TokenError::Malformed(e.to_string()),
        })?;
        let claims = data.claims;
        self.check_audience(&claims)?;
        let number = |name: &str| claims.get(name).and_then(Value::as_f64).map(|f| f.max(0.0) as u64);
        let expires_at = number("exp");
        if let Some(exp) = expires_at {
            if now >= exp {
                return Err(TokenError::Expired { exp, now });
            }
        }
        if let Some(nbf) = number("nbf") {
            if now < nbf {
                return Err(TokenError::NotYetValid { nbf, now });
            }
        }
        let username = self
            .username_claims
            .iter()
            .find_map(|c| claims.get(c).and_then(Value::as_str))
            .ok_or_else(|| TokenError::NoUsername(self.username_claims.join(", ")))?
            .to_owned();
        let mut raw_scopes = scope_list(claims.get("scope"));
        if let Some(extra) = &self.additional_scopes_key {
            raw_scopes.extend(scope_list(claims.get(extra)));
        }
        let (scopes, tags) = parse_scopes(&self.resource_server_id, &raw_scopes);
        Ok(Token { username, expires_at, scopes, tags })
    }

    fn check_audience(&self, claims: &Value) -> Result<(), TokenError> {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => a == &self.resource_server_id,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(&self.resource_server_id)),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(TokenError::Audience(self.resource_server_id.clone()))
        }
    }
}

/// A key file: a JWK with `kty` `oct` (HS256), else a PEM public key, RSA
/// (RS256) or EC P-256 (ES256).
fn load_key(bytes: &[u8]) -> Result<Key, String> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim_start().starts_with('{') {
        let jwk: Value = serde_json::from_slice(bytes).map_err(|e| format!("not a JWK JSON object: {e}"))?;
        if jwk.get("kty").and_then(Value::as_str) != Some("oct") {
            return Err("a JWK file must be a symmetric key (\"kty\": \"oct\"); give public keys as PEM".into());
        }
        let k = jwk.get("k").and_then(Value::as_str).ok_or("the JWK has no \"k\" (the base64url secret)")?;
        let key = DecodingKey::from_base64_secret(&base64url_to_standard(k))
            .map_err(|e| format!("the JWK's \"k\" is not base64url: {e}"))?;
        return Ok(Key { algorithm: Algorithm::HS256, key });
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        return Ok(Key { algorithm: Algorithm::RS256, key });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        return Ok(Key { algorithm: Algorithm::ES256, key });
    }
    Err("not a PEM RSA or EC (P-256) public key, nor a JWK with \"kty\": \"oct\"".into())
}

/// `from_base64_secret` takes standard base64 with padding; a JWK's `k` is
/// base64url without it.
fn base64url_to_standard(k: &str) -> String {
    let mut s: String = k
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

/// The `scope` claim: a space-separated string or an array of strings.
fn scope_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(Value::Array(a)) => {
            a.iter().filter_map(Value::as_str).flat_map(str::split_whitespace).map(String::from).collect()
        }
        _ => Vec::new(),
    }
}

/// Keeps the scopes prefixed `<resource_server_id>.` and reads them:
/// `read:`/`write:`/`configure:` + `<vhost>/<name>[/<routing key>]` (each
/// segment percent-decoded, so `%2F` is the default vhost), and
/// `tag:<tag>`. Anything else, a pattern of one segment or of more than
/// three included, is ignored, as the plugin ignores it.
pub fn parse_scopes(resource_server_id: &str, raw: &[String]) -> (Vec<Scope>, Vec<String>) {
    use super::permissions::Permission;
    let prefix = format!("{resource_server_id}.");
    let mut scopes = Vec::new();
    let mut tags = Vec::new();
    for s in raw {
        let Some(rest) = s.strip_prefix(&prefix) else { continue };
        if let Some(tag) = rest.strip_prefix("tag:") {
            tags.push(tag.to_owned());
            continue;
        }
        let Some((perm, pattern)) = rest.split_once(':') else { continue };
        let permission = match perm {
            "read" => Permission::Read,
            "write" => Permission::Write,
            "configure" => Permission::Configure,
            _ => continue,
        };
        let parts: Vec<&str> = pattern.split('/').collect();
        let (vhost, resource, routing_key) = match parts[..] {
            [vhost, resource] => (vhost, resource, None),
            [vhost, resource, routing_key] => (vhost, resource, Some(percent::decode(routing_key))),
            _ => continue,
        };
        scopes.push(Scope {
            permission,
            vhost: percent::decode(vhost),
            resource: percent::decode(resource),
            routing_key,
        });
    }
    (scopes, tags)
}

/// The plugin's wildcard match: `*` is any run of characters, all else is
/// literal, the whole name must match.
pub fn wildcard_matches(pattern: &str, name: &str) -> bool {
    let re = wildcard_regex(pattern);
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(name))
}

/// A wildcard pattern as an anchored regex (for `permissions.rs`, which
/// compiles once per connection).
pub fn wildcard_regex(pattern: &str) -> String {
    let parts: Vec<String> = pattern.split('*').map(regex::escape).collect();
    format!("^{}$", parts.join(".*"))
}

impl Token {
    /// RabbitMQ's vhost access for a token: some scope names the vhost.
    pub fn can_access_vhost(&self, vhost: &str) -> bool {
        self.scopes.iter().any(|s| wildcard_matches(&s.vhost, vhost))
    }

    /// The regex source of one permission in one vhost: the union of the
    /// matching scopes' name patterns; `""` (nothing) when none matches.
    pub fn pattern(&self, permission: super::permissions::Permission, vhost: &str) -> String {
        let names: Vec<&str> = self
            .scopes
            .iter()
            .filter(|s| s.permission == permission && wildcard_matches(&s.vhost, vhost))
            .map(|s| s.resource.as_str())
            .collect();
        if names.is_empty() {
            return String::new();
        }
        if names.contains(&"*") {
            return ".*".into();
        }
        let alts: Vec<String> = names.iter().map(|n| wildcard_regex(n)).collect();
        format!("(?:{})", alts.join("|"))
    }

    /// The topic grants of one permission in one vhost: for each matching
    /// scope with a routing-key segment, the regex sources of its exchange
    /// name pattern and of its routing-key pattern (`.*` for `*`). A topic
    /// operation is allowed when one pair matches both the exchange and the
    /// key; none (no such scope) allows nothing.
    pub fn topic_patterns(&self, permission: super::permissions::Permission, vhost: &str) -> Vec<(String, String)> {
        let source = |p: &str| if p == "*" { ".*".to_owned() } else { wildcard_regex(p) };
        self.scopes
            .iter()
            .filter(|s| s.permission == permission && wildcard_matches(&s.vhost, vhost))
            .filter_map(|s| Some((source(&s.resource), source(s.routing_key.as_deref()?))))
            .collect()
    }
}

/// The verified token a connection holds.
pub type SharedToken = Arc<Token>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::permissions::Permission;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &[u8] = b"test-secret-of-32-bytes-or-more!!";

    fn oauth2(dir: &std::path::Path) -> OAuth2 {
        let jwk = dir.join("hs.json");
        let k = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, SECRET);
        std::fs::write(&jwk, format!(r#"{{"kty": "oct", "k": "{k}"}}"#)).unwrap();
        let mut s = OAuth2Settings::default();
        for (k, v) in [
            ("auth_backends.1", "rabbit_auth_backend_oauth2"),
            ("auth_oauth2.resource_server_id", "rabbitmq"),
            ("auth_oauth2.default_key", "hs"),
            ("auth_oauth2.additional_scopes_key", "extra"),
        ] {
            s.apply(k, v).unwrap();
        }
        s.apply("auth_oauth2.signing_keys.hs", jwk.to_str().unwrap()).unwrap();
        OAuth2::from_settings(&s).unwrap().unwrap()
    }

    fn sign(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn scopes_are_read_as_the_oauth2_plugin_reads_them() {
        let raw: Vec<String> = [
            "rabbitmq.read:*/*",
            "rabbitmq.write:%2F/x-*",
            "rabbitmq.configure:vh/q1/ignored-rk",
            "rabbitmq.tag:administrator",
            "other.read:*/*",
            "rabbitmq.delete:*/*",
            "rabbitmq.read:no-slash",
            "openid",
        ]
        .map(String::from)
        .to_vec();
        let (scopes, tags) = parse_scopes("rabbitmq", &raw);
        assert_eq!(tags, ["administrator"]);
        assert_eq!(scopes.len(), 3, "{scopes:?}");
        assert_eq!(
            scopes[1],
            Scope { permission: Permission::Write, vhost: "/".into(), resource: "x-*".into(), routing_key: None }
        );
        assert_eq!(scopes[2].routing_key.as_deref(), Some("ignored-rk"));
        let t = Token { username: "u".into(), expires_at: None, scopes, tags };
        assert!(t.can_access_vhost("/") && t.can_access_vhost("vh") && t.can_access_vhost("anything"));
        assert_eq!(t.pattern(Permission::Read, "/"), ".*");
        assert_eq!(t.pattern(Permission::Write, "/"), r"(?:^x\-.*$)");
        assert_eq!(t.pattern(Permission::Write, "vh"), "", "write was granted on / only");
        assert_eq!(t.pattern(Permission::Configure, "vh"), "(?:^q1$)");
        assert!(wildcard_matches("a*c", "abbc") && !wildcard_matches("a*c", "abcd") && wildcard_matches("a.c", "a.c"));
        assert!(!wildcard_matches("a.c", "abc"), "a dot is literal");
    }

    #[test]
    fn the_third_segment_is_the_routing_key_pattern_of_topic_scopes() {
        let raw: Vec<String> = [
            "rabbitmq.write:%2F/events/orders.*",
            "rabbitmq.write:vh/*/*",
            "rabbitmq.read:*/amq.topic/a%2Fb",
            "rabbitmq.read:*/*",
            "rabbitmq.write:*/x/rk/extra",
        ]
        .map(String::from)
        .to_vec();
        let (scopes, _) = parse_scopes("rabbitmq", &raw);
        assert_eq!(scopes.len(), 4, "four segments are ignored, as binary:split gives the plugin four parts");
        assert_eq!(scopes[0].routing_key.as_deref(), Some("orders.*"));
        assert_eq!(scopes[2].routing_key.as_deref(), Some("a/b"), "percent-decoded like the other segments");
        assert_eq!(scopes[3].routing_key, None);
        let t = Token { username: "u".into(), expires_at: None, scopes, tags: Vec::new() };
        assert_eq!(t.topic_patterns(Permission::Write, "/"), [(r"^events$".to_owned(), r"^orders\..*$".to_owned())]);
        assert_eq!(t.topic_patterns(Permission::Write, "vh"), [(".*".to_owned(), ".*".to_owned())]);
        assert_eq!(
            t.topic_patterns(Permission::Read, "/"),
            [(r"^amq\.topic$".to_owned(), "^a/b$".to_owned())],
            "read:*/* has no routing-key segment, so no topic grant"
        );
        assert!(t.topic_patterns(Permission::Configure, "/").is_empty());
        // The two-segment scope still grants read on every resource.
        assert_eq!(t.pattern(Permission::Read, "/"), ".*");
    }

    #[test]
    fn tokens_are_checked_for_key_audience_and_time() {
        let dir = std::env::temp_dir().join(format!("warren-oauth2-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = oauth2(&dir);
        let now = 1_800_000_000;
        let claims = |aud: serde_json::Value, exp: u64| {
            serde_json::json!({"sub": "svc", "aud": aud, "exp": exp, "nbf": now - 10,
                "scope": "rabbitmq.read:*/* openid", "extra": ["rabbitmq.write:*/*"]})
        };
        let good = sign(claims(serde_json::json!(["other", "rabbitmq"]), now + 60), SECRET);
        let t = o.verify(&good, now).unwrap();
        assert_eq!(t.username, "svc");
        assert_eq!(t.expires_at, Some(now + 60));
        assert_eq!(t.scopes.len(), 2, "scope and additional_scopes_key");
        assert_eq!(o.verify(&good, now + 60), Err(TokenError::Expired { exp: now + 60, now: now + 60 }));
        assert_eq!(o.verify(&good, now - 11), Err(TokenError::NotYetValid { nbf: now - 10, now: now - 11 }));
        let wrong_aud = sign(claims(serde_json::json!("other"), now + 60), SECRET);
        assert_eq!(o.verify(&wrong_aud, now), Err(TokenError::Audience("rabbitmq".into())));
        let wrong_key = sign(claims(serde_json::json!("rabbitmq"), now + 60), b"another-secret-another-secret-00");
        assert_eq!(o.verify(&wrong_key, now), Err(TokenError::BadSignature("hs".into())));
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("nope".into());
        let unknown_kid =
            encode(&h, &claims(serde_json::json!("rabbitmq"), now + 60), &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(o.verify(&unknown_kid, now), Err(TokenError::UnknownKey("nope".into())));
        // Garbage of any shape is a clean refusal.
        let huge = "a.".repeat(40_000);
        for junk in ["", "guest", "a.b.c", "....", "eyJ.eyJ.x", "\u{0}\u{ff}", huge.as_str()] {
            assert!(matches!(o.verify(junk, now), Err(TokenError::Malformed(_))), "{junk:.20}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn settings_errors_say_what_to_fix() {
        let mut s = OAuth2Settings::default();
        s.apply("auth_backends.1", "rabbit_auth_backend_oauth2").unwrap();
        assert!(OAuth2::from_settings(&s).unwrap_err().contains("auth_oauth2.resource_server_id"));
        s.apply("auth_oauth2.resource_server_id", "rabbitmq").unwrap();
        assert!(OAuth2::from_settings(&s).unwrap_err().contains("signing_keys"));
        s.apply("auth_oauth2.signing_keys.k", "/nonexistent/key.pem").unwrap();
        assert!(OAuth2::from_settings(&s).unwrap_err().contains("cannot read /nonexistent/key.pem"));
        assert!(s.apply("auth_backends.2", "ldap").unwrap_err().contains("unsupported auth backend 'ldap'"));
    }
}
