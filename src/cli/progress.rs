//! Progress of long pushes and pulls: a bar when stderr is a terminal, otherwise (pods) a
//! log line every few seconds. Never on stdout, which carries data and phase output.

use std::io::{IsTerminal, Write};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

/// One reading of a running command's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Bytes read (push) or written (pull).
    pub bytes: u64,
    /// Raw bytes that were new to the repository (push only).
    pub new_bytes: Option<u64>,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy)]
pub struct ProgressConfig {
    /// Show nothing while running.
    pub quiet: bool,
    /// Seconds between log lines when stderr is not a terminal.
    pub interval: Duration,
}

/// A running reporter; stops when finished or dropped.
pub struct Reporter {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

fn line(label: &str, s: Sample, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mut out = format!(
        "{label}: {} ({}/s)",
        super::summary::human_bytes(s.bytes),
        super::summary::human_bytes((s.bytes as f64 / secs) as u64)
    );
    if let Some(new) = s.new_bytes {
        let dedup = if s.bytes == 0 {
            0.0
        } else {
            100.0 * (1.0 - new as f64 / s.bytes as f64)
        };
        out.push_str(&format!(
            ", {} new, {dedup:.1}% deduplicated",
            super::summary::human_bytes(new)
        ));
    }
    out
}

impl Reporter {
    /// Starts reporting `sample()` under `label` ("push", "pull"); `total` sizes the bar.
    pub fn start(
        label: &'static str,
        cfg: ProgressConfig,
        total: Option<u64>,
        sample: impl Fn() -> Sample + Send + 'static,
    ) -> Reporter {
        if cfg.quiet {
            return Reporter {
                stop: None,
                handle: None,
            };
        }
        let (stop, stopped) = bounded::<()>(1);
        let terminal = std::io::stderr().is_terminal();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            if terminal {
                let bar = match total {
                    Some(t) => indicatif::ProgressBar::new(t),
                    None => indicatif::ProgressBar::new_spinner(),
                };
                let template = if total.is_some() {
                    "{spinner} [{bar:30}] {percent:>3}% {msg}"
                } else {
                    "{spinner} {msg}"
                };
                if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                loop {
                    let s = sample();
                    bar.set_position(s.bytes);
                    bar.set_message(line(label, s, started.elapsed()));
                    match stopped.recv_timeout(Duration::from_millis(200)) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
                bar.finish_and_clear();
            } else {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(cfg.interval) {
                    let l = line(label, sample(), started.elapsed());
                    let _ = writeln!(std::io::stderr(), "kando: {l}");
                }
            }
        });
        Reporter {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops reporting (the final summary is the caller's).
    pub fn finish(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}
