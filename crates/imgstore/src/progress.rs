//! Progress of long commands (`load`, `save`) on standard error: shown only when standard
//! error is a terminal and `-q` is not given, so that scripts see nothing but results.

use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where progress goes: a terminal, or nowhere.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Progress on standard error if it is a terminal and `quiet` is off.
    pub fn stderr(quiet: bool) -> Progress {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// No progress at all.
    pub fn hidden() -> Progress {
        Progress { enabled: false }
    }

    /// A line of its own (`<layer>: Already exists`).
    pub fn note(&self, line: &str) {
        if self.enabled {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// A byte counter labelled `label`, out of `total` bytes (0: unknown).
    pub fn bytes(&self, label: &str, total: u64) -> Bar {
        Bar {
            enabled: self.enabled,
            label: label.to_owned(),
            total,
            state: Mutex::new((0, None)),
        }
    }
}

/// One counter; see [`Progress::bytes`].
#[derive(Debug)]
pub struct Bar {
    enabled: bool,
    label: String,
    total: u64,
    /// Bytes so far, and when it was last drawn.
    state: Mutex<(u64, Option<Instant>)>,
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

impl Bar {
    /// Counts `n` more bytes, redrawing at most ten times a second.
    pub fn add(&self, n: u64) {
        if !self.enabled {
            return;
        }
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.0 += n;
        let now = Instant::now();
        if st
            .1
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        st.1 = Some(now);
        self.draw(st.0);
    }

    fn draw(&self, done: u64) {
        let line = if self.total > 0 {
            format!("{}  {}/{}", self.label, human(done), human(self.total))
        } else {
            format!("{}  {}", self.label, human(done))
        };
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}");
    }

    /// Ends the counter's line.
    pub fn finish(&self) {
        if self.enabled {
            let done = self.state.lock().map(|s| s.0).unwrap_or(0);
            self.draw(done);
            let _ = writeln!(std::io::stderr().lock());
        }
    }

    /// `r`, counted.
    pub fn wrap<'a, R: Read + 'a>(&'a self, r: R) -> Counted<'a, R> {
        Counted {
            bar: self,
            inner: r,
        }
    }
}

/// A reader whose bytes a [`Bar`] counts.
#[derive(Debug)]
pub struct Counted<'a, R> {
    bar: &'a Bar,
    inner: R,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.add(n as u64);
        Ok(n)
    }
}
