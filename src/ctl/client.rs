//! The one HTTP client `warren ctl` uses: blocking requests to a RabbitMQ
//! management API (Warren's or RabbitMQ's own), basic auth, and errors that
//! say what happened and what to do.
//!
//! No broker state here and no formatting: callers get a status and a body.

use std::io::Read;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use super::Failure;

/// Exit codes, as rabbitmqctl uses them (BSD sysexits).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// EX_USAGE: bad arguments (rabbitmqctl also uses it for a missing queue on delete).
    pub const USAGE: i32 = 64;
    /// EX_DATAERR: bad input data (a vhost that does not exist on delete, bad JSON).
    pub const DATA: i32 = 65;
    /// EX_NOUSER: the named user does not exist.
    pub const NO_USER: i32 = 67;
    /// EX_UNAVAILABLE: the node (here: the management API) cannot be reached.
    pub const UNAVAILABLE: i32 = 69;
    /// EX_SOFTWARE: the operation failed on the server.
    pub const SOFTWARE: i32 = 70;
    /// EX_TEMPFAIL: the operation timed out.
    pub const TEMPFAIL: i32 = 75;
    /// EX_NOPERM: the credentials were refused.
    pub const NO_PERM: i32 = 77;
}

/// Largest response body read (a definitions export of a big broker fits).
const BODY_LIMIT: u64 = 1 << 30;

/// A management API endpoint and the credentials to use on it.
pub struct Api {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:15672`.
    base: String,
    /// The value of the `Authorization` header (basic auth).
    authorization: String,
    /// The user name, for error messages.
    username: String,
    agent: ureq::Agent,
}

/// A response: status and body text. Non-2xx statuses are not errors here;
/// each verb decides what a 404 means (rabbitmqctl's exit codes differ per verb).
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    /// The body as JSON, or a failure naming the path.
    pub fn json(&self, path: &str) -> Result<Value, Failure> {
        serde_json::from_str(&self.body).map_err(|e| {
            Failure::new(exit::SOFTWARE, format!("the management API answered {path} with invalid JSON: {e}"))
        })
    }

    /// RabbitMQ's error bodies are `{"error": ..., "reason": ...}`; the reason,
    /// or the raw body when it is not that shape.
    pub fn reason(&self) -> String {
        match serde_json::from_str::<Value>(&self.body) {
            Ok(v) => match v.get("reason") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => self.body.clone(),
            },
            Err(_) => self.body.trim().to_owned(),
        }
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Api {
    /// `base` is the management URL as the user gave it (`http://host:port`,
    /// optionally with a path prefix); `timeout` bounds each whole request.
    pub fn new(base: &str, username: &str, password: &str, timeout: Option<Duration>) -> Api {
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/api").unwrap_or(base).to_owned();
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Like rabbitmqctl and rabbitmqadmin, talk to the broker directly:
            // an http_proxy meant for the internet must not capture 127.0.0.1.
            .proxy(None)
            .timeout_global(timeout)
            .user_agent(concat!("warren-ctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Api { base, authorization: format!("Basic {credentials}"), username: username.to_owned(), agent }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` starts with `/api/` and has its segments already encoded
    /// (see [`encode`]).
    pub fn get(&self, path: &str) -> Result<Response, Failure> {
        let url = format!("{}{path}", self.base);
        let result = self.agent.get(&url).header("Authorization", &self.authorization).call();
        self.finish(path, result)
    }

    /// A GET that must succeed, parsed as JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, Failure> {
        let response = self.get(path)?;
        if !response.ok() {
            return Err(self.unexpected("GET", path, &response));
        }
        response.json(path)
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Response, Failure> {
        let url = format!("{}{path}", self.base);
        let result = self
            .agent
            .put(&url)
            .header("Authorization", &self.authorization)
            .content_type("application/json")
            .send(body.to_string());
        self.finish(path, result)
    }

    /// POST a body that is already JSON text (definitions are sent verbatim).
    pub fn post_raw(&self, path: &str, body: &str) -> Result<Response, Failure> {
        let url = format!("{}{path}", self.base);
        let result = self
            .agent
            .post(&url)
            .header("Authorization", &self.authorization)
            .content_type("application/json")
            .send(body);
        self.finish(path, result)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Response, Failure> {
        self.post_raw(path, &body.to_string())
    }

    /// DELETE, with an optional `X-Reason` header (connection close).
    pub fn delete(&self, path: &str, reason: Option<&str>) -> Result<Response, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.delete(&url).header("Authorization", &self.authorization);
        if let Some(reason) = reason {
            request = request.header("X-Reason", reason);
        }
        let result = request.call();
        self.finish(path, result)
    }

    fn finish(
        &self,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response, Failure> {
        let mut response = result.map_err(|e| self.transport_failure(e))?;
        let status = response.status().as_u16();
        let mut body = String::new();
        response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .reader()
            .read_to_string(&mut body)
            .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("reading the answer to {path} failed: {e}")))?;
        let response = Response { status, body };
        if status == 401 {
            return Err(Failure::new(
                exit::NO_PERM,
                format!(
                    "the management API at {} refused user \"{}\" ({}): pass --username and --password \
                     (or set RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS)",
                    self.base,
                    self.username,
                    response.reason()
                ),
            ));
        }
        Ok(response)
    }

    /// The failure for a status the verb did not expect.
    pub fn unexpected(&self, method: &str, path: &str, response: &Response) -> Failure {
        let code = if response.status == 403 { exit::NO_PERM } else { exit::SOFTWARE };
        Failure::new(code, format!("{method} {path} failed with HTTP {}: {}", response.status, response.reason()))
    }

    fn transport_failure(&self, e: ureq::Error) -> Failure {
        let hint = "is Warren running with --management-port?";
        let what = match &e {
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                std::io::ErrorKind::TimedOut => "timed out".to_owned(),
                _ => io.to_string(),
            },
            ureq::Error::HostNotFound => "host not found".to_owned(),
            ureq::Error::Timeout(_) => {
                return Failure::new(
                    exit::TEMPFAIL,
                    format!("the management API at {} did not answer in time (--timeout)", self.base),
                )
            }
            ureq::Error::BadUri(u) => {
                return Failure::new(exit::USAGE, format!("invalid management URL {u} (expected http://host:port)"))
            }
            other if self.base.starts_with("https:") => {
                return Failure::new(
                    exit::USAGE,
                    format!("cannot reach {}: {other} — warren ctl speaks plain http only", self.base),
                )
            }
            other => other.to_string(),
        };
        Failure::new(exit::UNAVAILABLE, format!("cannot reach the management API at {}: {what} — {hint}", self.base))
    }
}

/// Percent-encodes one path segment as RabbitMQ's API expects (its UI uses
/// `encodeURIComponent`): everything but unreserved characters, so the
/// default vhost `/` becomes `%2F`.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(encode("/"), "%2F");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("amq.direct"), "amq.direct");
        assert_eq!(encode("x%y#?&=+"), "x%25y%23%3F%26%3D%2B");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn base_url_is_normalised() {
        assert_eq!(Api::new("http://h:1/", "g", "g", None).base(), "http://h:1");
        assert_eq!(Api::new("http://h:1/api/", "g", "g", None).base(), "http://h:1");
    }

    #[test]
    fn error_reason_is_read_from_rabbitmq_error_bodies() {
        let r = Response { status: 404, body: r#"{"error":"Object Not Found","reason":"Not Found"}"#.into() };
        assert_eq!(r.reason(), "Not Found");
        let r = Response { status: 500, body: "boom\n".into() };
        assert_eq!(r.reason(), "boom");
    }
}
