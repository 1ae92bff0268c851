//! [`RetryPolicy`]: bounded retries with exponential back-off, for connection errors and
//! HTTP 5xx/429 answers (never for 4xx, never endlessly).

use std::time::{Duration, Instant};

use crate::error::Error;

/// How often and how long to retry a request that failed in a way a retry may fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included); at least 1.
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each further one.
    pub initial_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
    /// No attempt starts after this much time since the first.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts (dockerd's default for downloads), waits of 0.25, 0.5, 1 and 2 s, at most
    /// 2 minutes in all.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `n` (0-based; attempt 0 does not wait).
    pub fn delay(&self, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Runs `f` until it succeeds, fails in a way a retry cannot fix, or the attempts or the
    /// time run out. `what` names the request in the log.
    pub fn run<T>(&self, what: &str, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let start = Instant::now();
        let attempts = self.attempts.max(1);
        let mut n = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() => {
                    n += 1;
                    let wait = self.delay(n);
                    if n >= attempts || start.elapsed() + wait > self.max_elapsed {
                        return Err(if n > 1 {
                            Error::RetriesExhausted {
                                attempts: n,
                                last: Box::new(e),
                            }
                        } else {
                            e
                        });
                    }
                    tracing::info!(request = what, attempt = n, error = %e, wait_ms = wait.as_millis() as u64, "retrying");
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
