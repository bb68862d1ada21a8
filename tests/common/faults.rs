//! Fault injection between kando and a real S3 server: `scripts/s3/faultproxy.py` run as
//! a child process, and a kando runner with extra environment and a deadline (a hang must
//! fail a test, not block it forever).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Path of the proxy script, from the crate root.
pub fn proxy_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3/faultproxy.py")
}

/// A running `faultproxy.py`, stopped (SIGTERM, then SIGKILL) on drop.
pub struct FaultProxy {
    /// http://127.0.0.1:PORT of the proxy.
    pub endpoint: String,
    /// The upstream it forwards to.
    pub upstream: String,
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl FaultProxy {
    /// Starts the proxy in front of `upstream` with extra flags (`--rate 500=0.1`, ...).
    pub fn start(upstream: &str, flags: &[&str]) -> anyhow::Result<FaultProxy> {
        let dir = tempfile::Builder::new()
            .prefix("kando-faultproxy-")
            .tempdir()?;
        let port_file = dir.path().join("port");
        let child = Command::new("python3")
            .arg(proxy_script())
            .arg("--upstream")
            .arg(upstream)
            .arg("--listen-port-file")
            .arg(&port_file)
            .arg("--stats-file")
            .arg(dir.path().join("stats.json"))
            .arg("--log")
            .arg(dir.path().join("requests.log"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr"))?)
            .spawn()
            .context("starting python3 scripts/s3/faultproxy.py")?;
        let mut proxy = FaultProxy {
            endpoint: String::new(),
            upstream: upstream.to_string(),
            port: 0,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
            {
                proxy.port = port;
                proxy.endpoint = format!("http://127.0.0.1:{port}");
                return Ok(proxy);
            }
            if let Some(status) = proxy.child.try_wait()? {
                bail!(
                    "faultproxy.py exited ({status}): {}",
                    std::fs::read_to_string(proxy.dir.path().join("stderr")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("faultproxy.py wrote no port within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The proxy's counters (`GET /__stats`): requests, forwarded, faults per mode, ...
    pub fn stats(&self) -> serde_json::Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("proxy answers");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"GET /__stats HTTP/1.1\r\nHost: faultproxy\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("bad /__stats answer: {text}"));
        serde_json::from_str(body).expect("stats are JSON")
    }

    /// Faults of `mode` injected so far (500, 503, reset, truncate, stall).
    pub fn faults(&self, mode: &str) -> u64 {
        self.stats()["faults"][mode].as_u64().unwrap_or(0)
    }

    /// The last `n` lines of the proxy's request log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `profile` (rendered for the upstream) with its endpoint pointed at this proxy.
    pub fn profile_for(&self, profile: &str) -> String {
        let from = format!(r#""endpoint":"{}""#, self.upstream);
        assert!(profile.contains(&from), "profile has no {from}: {profile}");
        profile.replace(&from, &format!(r#""endpoint":"{}""#, self.endpoint))
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // SIGTERM first so the proxy writes its stats file.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(dir) = std::env::var("KANDO_KEEP_S3_LOGS") {
            let _ = Command::new("cp")
                .arg("-r")
                .arg(self.dir.path())
                .arg(format!(
                    "{dir}/faultproxy-{}-{}",
                    std::process::id(),
                    self.port
                ))
                .status();
        }
    }
}

/// Runs kando with `args`, `stdin` and extra environment; kills it and panics when it
/// runs longer than `limit` (a hang is a bug, whatever the faults).
pub fn kando_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = crate::common::kando_command();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("kando runs");
    let mut sin = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap();
            panic!(
                "kando {args:?} still running after {limit:?} (hang): stderr so far:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}
