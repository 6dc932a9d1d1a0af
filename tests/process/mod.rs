//! Runs the `warren` binary as a child process on a free loopback port.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Broker {
    pub child: Child,
    pub uri: String,
    pub port: u16,
    /// Removed when the broker goes.
    port_file: std::path::PathBuf,
}

impl Broker {
    /// Starts `warren` on `data_dir` and waits (bounded) until it listens.
    pub fn start(data_dir: &Path) -> Broker {
        Self::start_with(data_dir, &[], None)
    }

    /// As `start`, with extra flags, and its log appended to `log` if given.
    pub fn start_with(data_dir: &Path, extra: &[&str], log: Option<&Path>) -> Broker {
        let port_file = data_dir.with_extension("port");
        let _ = std::fs::remove_file(&port_file);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.args(["--bind", "127.0.0.1", "--port", "0", "--management-port", "0", "--prometheus-port", "0"])
            .args(["--log-level", "warn", "--data-dir"])
            .arg(data_dir)
            .arg("--port-file")
            .arg(&port_file)
            .args(extra);
        if let Some(log) = log {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("opening the log file");
            cmd.stdout(Stdio::from(f.try_clone().expect("log file"))).stderr(Stdio::from(f));
        }
        let mut child = cmd.spawn().expect("spawning warren");
        for _ in 0..400 {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = p.trim().parse::<u16>() {
                    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
                    return Broker { child, uri, port, port_file };
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("warren did not write its port file within 10 s");
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn terminate(mut self) -> bool {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.port_file);
    }
}
