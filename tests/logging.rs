//! Log lines carry ANSI colour codes only on a terminal: written to a file
//! or a pipe (systemd, docker logs, CI, `| grep`) they are plain text, and
//! `NO_COLOR` turns colours off everywhere (no-color.org).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ESC: u8 = 0x1b;

fn warren_args() -> [&'static str; 9] {
    ["--in-memory", "--bind", "127.0.0.1", "--port", "0", "--management-port", "0", "--prometheus-port", "0"]
}

/// Runs warren with stdout and stderr piped until it logs that it started,
/// then stops it; returns everything it wrote.
fn output_through_a_pipe() -> Vec<u8> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(warren_args())
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning warren");
    let mut out = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut line = Vec::new();
        if lines.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            break;
        }
        out.extend_from_slice(&line);
        if line.windows(23).any(|w| w == b"Server startup complete") {
            break;
        }
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = lines.read_to_end(&mut out);
    let _ = child.stderr.take().unwrap().read_to_end(&mut out);
    let _ = child.wait();
    out
}

/// Runs warren for a moment on a pseudo-terminal (util-linux `script`),
/// with `NO_COLOR` as given; `None` if `script` is not installed.
fn output_on_a_terminal(no_color: Option<&str>) -> Option<Vec<u8>> {
    let cmd = format!("timeout 2 {} {}", env!("CARGO_BIN_EXE_warren"), warren_args().join(" "));
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null()).env_remove("NO_COLOR");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let out = c.output().ok()?;
    Some(out.stdout)
}

#[test]
fn logs_written_to_a_pipe_have_no_colour_codes() {
    let out = output_through_a_pipe();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("Server startup complete"), "warren did not start: {text}");
    assert!(!out.contains(&ESC), "ESC bytes in piped log output: {text:?}");
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    // The three runs take two seconds each: side by side.
    let (coloured, plain, empty) = std::thread::scope(|s| {
        let a = s.spawn(|| output_on_a_terminal(None));
        let b = s.spawn(|| output_on_a_terminal(Some("1")));
        let c = s.spawn(|| output_on_a_terminal(Some("")));
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let (Some(coloured), Some(plain), Some(empty)) = (coloured, plain, empty) else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    let text = String::from_utf8_lossy(&coloured);
    assert!(text.contains("Server startup complete"), "warren did not start: {text}");
    assert!(coloured.contains(&ESC), "no colours on a terminal: {text:?}");
    assert!(String::from_utf8_lossy(&plain).contains("Server startup complete"));
    assert!(!plain.contains(&ESC), "NO_COLOR=1 still coloured: {:?}", String::from_utf8_lossy(&plain));
    // An empty NO_COLOR does not count (no-color.org).
    assert!(empty.contains(&ESC), "an empty NO_COLOR turned colours off");
}
