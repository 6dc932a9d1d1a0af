//! A small blocking HTTP client for the management API tests (ureq, the
//! client `warren ctl` uses), with basic auth and JSON bodies.
//!
//! `WARREN_TEST_MGMT_URL` (with `WARREN_TEST_URI`) points the tests at an
//! external broker's management API, e.g. the reference RabbitMQ's
//! `http://127.0.0.1:15673`, to check that what they expect is what
//! RabbitMQ does.

use base64::Engine;
use serde_json::Value;

pub struct Http {
    base: String,
    auth: Option<String>,
    agent: ureq::Agent,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    /// The body as JSON (`Value::Null` when empty).
    pub fn json(&self) -> Value {
        if self.text.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Percent-encodes one path segment (`/` → `%2F`).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Http {
    pub fn new(base: &str, user: Option<(&str, &str)>) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into();
        let auth = user
            .map(|(u, p)| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))));
        Http { base: base.trim_end_matches('/').to_owned(), auth, agent }
    }

    /// The same API as another user.
    pub fn as_user(&self, user: &str, pass: &str) -> Http {
        Http::new(&self.base, Some((user, pass)))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut r = r.expect("HTTP request failed");
        let status = r.status().as_u16();
        let headers =
            r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned())).collect();
        let text = r.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default();
        Reply { status, headers, text }
    }

    pub fn get(&self, path: &str) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        Self::finish(req.call())
    }

    /// A GET that must answer 200, as JSON.
    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()
    }

    pub fn send(&self, method: &str, path: &str, body: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "PUT" => self.agent.put(url),
            "POST" => self.agent.post(url),
            _ => panic!("send: {method}"),
        };
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        Self::finish(req.content_type("application/json").send(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, &body.to_string())
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, &body.to_string())
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.delete_with(path, &[])
    }

    pub fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.delete(format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.call())
    }
}

/// The in-process Warren's management API, as guest (an administrator).
pub fn management(b: &super::TestBroker) -> Http {
    let addr = b.server().expect("in-process Warren").management_addr().expect("management is on");
    Http::new(&format!("http://{addr}"), Some(("guest", "guest")))
}

/// Runs a blocking HTTP call off the async test's worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking call")
}
