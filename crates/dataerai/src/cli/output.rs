//! How the CLI talks to a person or a script: results on stdout (`--json` for
//! machine-readable output), progress and errors on stderr.
//!
//! Every line for a person goes through [`write_line`] (the `outln!` macro)
//! or [`printable`]: names, titles and file names come from other users, so
//! control characters (terminal escape sequences, carriage returns) are shown
//! escaped, never sent to the terminal. A closed stdout (`dataerai … | head
//! -1`) ends the process quietly instead of panicking.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use dataerai_transfer::{ProgressEvent, ProgressSink};

/// One line on stdout, control characters escaped ([`printable`]).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(&$crate::cli::output::printable(&format!($($arg)*)))
    };
}

/// Write `line` and a newline to stdout. If the reader has gone (a closed
/// pipe) the process ends with status 0: it has all it wanted. Any other
/// write failure (a full disk behind a redirect) is an error, status 1.
pub fn write_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// `text` safe for a terminal: every control character (C0, DEL, C1 — so
/// ESC and OSC sequences, carriage returns, newlines) shown escaped, as
/// `\u{1b}`, `\r`, `\n`.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_debug());
        } else {
            shown.push(c);
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// `n` and the noun in the right number: "1 entity", "3 entities".
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Print a value as pretty JSON on stdout (JSON escapes control characters).
/// A command's result: `value` as JSON with `--json`, else the line `human`
/// writes of it.
pub fn print_result<T: Serialize>(as_json: bool, value: &T, human: impl FnOnce() -> String) {
    if as_json {
        print_json(value);
    } else {
        write_line(&printable(&human()));
    }
}

pub fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => write_line(&s),
        Err(e) => eprintln!("error: cannot encode result: {e}"),
    }
}

/// A failed command's error on stderr: `error: MESSAGE (ERR_CODE)`, or with
/// `--json` the object `{"error": {"code": …, "message": …}}`.
pub fn print_error(as_json: bool, code: &str, message: &str) {
    if as_json {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        eprintln!("{body}");
    } else {
        eprintln!("error: {} ({code})", printable(message));
    }
}

/// `1.5 MiB`-style sizes: the one formatter, shared with the server's messages.
pub use dataerai_proto::api::human_bytes;

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
        bar.set_message(printable(label).into_owned());
        ProgressView { bar: Some(bar) }
    }

    pub fn sink(&self, label: &str) -> ProgressSink {
        if let Some(bar) = &self.bar {
            let bar = bar.clone();
            return Arc::new(move |ev: ProgressEvent| {
                // A transfer that waited for the server started without a known size.
                if bar.length() != Some(ev.bytes_total) {
                    bar.set_length(ev.bytes_total);
                }
                bar.set_position(ev.bytes_done)
            });
        }
        let label = printable(label).into_owned();
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
    #[test]
    fn counted_picks_the_noun_for_the_number() {
        assert_eq!(counted(1, "entity", "entities"), "1 entity");
        assert_eq!(counted(0, "entity", "entities"), "0 entities");
        assert_eq!(counted(2, "agent", "agents"), "2 agents");
    }

    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        let cases = [
            ("plain title", "plain title"),
            ("Ünïcode ✓", "Ünïcode ✓"),
            ("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("\u{1b}]0;pwned\u{7}", "\\u{1b}]0;pwned\\u{7}"),
            ("a\rb\nc\td", "a\\rb\\nc\\td"),
            ("c1 \u{9b}2J", "c1 \\u{9b}2J"),
            ("del\u{7f}", "del\\u{7f}"),
        ];
        for (raw, shown) in cases {
            assert_eq!(printable(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn sizes_are_human() {
        for (bytes, shown) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (3 * 1024 * 1024 * 1024, "3.0 GiB"),
        ] {
            assert_eq!(human_bytes(bytes), shown, "{bytes}");
        }
    }
}

/// `--limit N` / `--all` of every list command.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct PageArgs {
    /// Items per page (1 to 1000; the server's default is 100).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Every item, fetched page by page.
    #[arg(long)]
    pub all: bool,
}

/// One page of a list (`args.limit`), or with `args.all` every page joined
/// into one: `fetch(limit, offset)` answers a page.
pub async fn fetch_pages<T, F, Fut>(
    args: PageArgs,
    mut fetch: F,
) -> Result<dataerai_proto::api::Page<T>, dataerai_proto::ApiError>
where
    F: FnMut(Option<u64>, Option<u64>) -> Fut,
    Fut: std::future::Future<
        Output = Result<dataerai_proto::api::Page<T>, dataerai_proto::ApiError>,
    >,
{
    let mut page = fetch(args.limit, None).await?;
    if !args.all {
        return Ok(page);
    }
    let mut items = std::mem::take(&mut page.items);
    while (items.len() as u64) < page.total {
        page = fetch(args.limit, Some(items.len() as u64)).await?;
        if page.items.is_empty() {
            break;
        }
        items.append(&mut page.items);
    }
    page.items = items;
    page.offset = 0;
    page.limit = page.items.len() as u64;
    Ok(page)
}

/// The closing line of a listed page: "(3 of 120 assets; --all for every one)".
pub fn page_footer<T>(page: &dataerai_proto::api::Page<T>, noun: &str) {
    let more = if page.offset + (page.items.len() as u64) < page.total {
        "; --limit N or --all for more"
    } else {
        ""
    };
    crate::outln!("({} of {} {noun}{more})", page.items.len(), page.total);
}
