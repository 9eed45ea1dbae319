//! How the CLI talks to a person or a script: results on stdout (`--json` for
//! machine-readable output), progress and errors on stderr.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use dataerai_transfer::{ProgressEvent, ProgressSink};

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot encode result: {e}"),
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Progress display for one transfer: a bar on a terminal, otherwise a plain
/// line about once a second and one at the end (readable in logs and CI).
pub struct ProgressView {
    bar: Option<ProgressBar>,
}

impl ProgressView {
    pub fn new(label: &str, total: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return ProgressView { bar: None };
        }
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(label.to_string());
        ProgressView { bar: Some(bar) }
    }

    pub fn sink(&self, label: &str) -> ProgressSink {
        if let Some(bar) = &self.bar {
            let bar = bar.clone();
            return Arc::new(move |ev: ProgressEvent| bar.set_position(ev.bytes_done));
        }
        let label = label.to_string();
        let last = Mutex::new(None::<Instant>);
        Arc::new(move |ev: ProgressEvent| {
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            let due = match *last {
                None => true,
                Some(t) => t.elapsed() >= Duration::from_secs(1),
            };
            if due || ev.bytes_done == ev.bytes_total {
                *last = Some(Instant::now());
                let pct = if ev.bytes_total == 0 {
                    100.0
                } else {
                    ev.bytes_done as f64 * 100.0 / ev.bytes_total as f64
                };
                eprintln!(
                    "{label}: {} / {} ({pct:.0}%), chunk {}/{}, {:.1} MB/s",
                    human_bytes(ev.bytes_done),
                    human_bytes(ev.bytes_total),
                    ev.chunk_index + 1,
                    ev.chunk_count,
                    ev.rate_bps / 1e6
                );
            }
        })
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
