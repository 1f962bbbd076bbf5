//! Log lines that repeat (a provider down, answering garbage) are rate-limited: at most one
//! line per key (provider and kind) per interval, and the next line admitted says how many
//! similar lines were suppressed meanwhile. Counters stay exact; only the log is thinned.
//!
//! Pure: the caller passes the time; the worker keeps one limiter per VM.

/// A key's window: when its last line was admitted and what was suppressed since.
#[derive(Debug, Clone)]
struct Window<K> {
    key: K,
    admitted_at: u64,
    suppressed: u64,
}

/// Admits at most one line per key per `interval_ms`, for at most `max_keys` keys; further
/// keys share one overflow window, so the log never gets more than `max_keys + 1` lines per
/// interval, whatever the keys.
#[derive(Debug, Clone)]
pub struct LogLimiter<K> {
    interval_ms: u64,
    max_keys: usize,
    windows: Vec<Window<K>>,
    overflow: Option<Window<()>>,
}

/// One line per (provider, kind) per 10 seconds.
pub const WARNING_INTERVAL_MS: u64 = 10_000;
/// Distinct keys tracked; more share one window (keys come from the configuration).
pub const MAX_WARNING_KEYS: usize = 64;

impl<K: PartialEq> LogLimiter<K> {
    pub fn new(interval_ms: u64, max_keys: usize) -> Self {
        Self {
            interval_ms,
            max_keys,
            windows: Vec::new(),
            overflow: None,
        }
    }

    /// Whether a line for `key` may be logged at `now` (milliseconds): `Some(n)` with the
    /// number of lines suppressed since the last one admitted, or `None` (counted as
    /// suppressed).
    pub fn admit(&mut self, key: K, now: u64) -> Option<u64> {
        let interval = self.interval_ms;
        if let Some(window) = self.windows.iter_mut().find(|w| w.key == key) {
            return pass(&mut window.admitted_at, &mut window.suppressed, now, interval);
        }
        if self.windows.len() < self.max_keys {
            self.windows.push(Window {
                key,
                admitted_at: now,
                suppressed: 0,
            });
            return Some(0);
        }
        match &mut self.overflow {
            Some(window) => pass(&mut window.admitted_at, &mut window.suppressed, now, interval),
            None => {
                self.overflow = Some(Window {
                    key: (),
                    admitted_at: now,
                    suppressed: 0,
                });
                Some(0)
            }
        }
    }

    /// `message` if a line for `key` may be logged at `now`, with `" (N similar suppressed)"`
    /// when lines were suppressed since the last one.
    pub fn line(&mut self, key: K, now: u64, message: &str) -> Option<String> {
        match self.admit(key, now)? {
            0 => Some(message.to_owned()),
            n => Some(format!("{message} ({n} similar suppressed)")),
        }
    }

    /// Keys tracked (at most `max_keys`).
    pub fn keys(&self) -> usize {
        self.windows.len()
    }
}

/// One window's verdict: admit (and restart the window) once `interval` has passed, else
/// count the line as suppressed. A clock that goes backwards restarts nothing.
fn pass(admitted_at: &mut u64, suppressed: &mut u64, now: u64, interval: u64) -> Option<u64> {
    if now.saturating_sub(*admitted_at) >= interval {
        *admitted_at = now;
        Some(std::mem::take(suppressed))
    } else {
        *suppressed = suppressed.saturating_add(1);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_then_the_count_of_what_was_suppressed() {
        let mut limiter = LogLimiter::new(10_000, 8);
        assert_eq!(limiter.admit("kc/bad_status", 1_000), Some(0));
        for t in 1_001..1_500 {
            assert_eq!(limiter.admit("kc/bad_status", t), None);
        }
        assert_eq!(limiter.admit("kc/bad_status", 10_999), None);
        assert_eq!(limiter.admit("kc/bad_status", 11_000), Some(500));
        assert_eq!(limiter.admit("kc/bad_status", 30_000), Some(0));
    }

    #[test]
    fn keys_do_not_share_windows() {
        let mut limiter = LogLimiter::new(10_000, 8);
        assert_eq!(limiter.admit("kc/bad_status", 0), Some(0));
        assert_eq!(limiter.admit("kc/no_response", 1), Some(0));
        assert_eq!(limiter.admit("github/bad_status", 2), Some(0));
        assert_eq!(limiter.admit("kc/bad_status", 3), None);
    }

    #[test]
    fn the_suppressed_count_is_in_the_next_line() {
        let mut limiter = LogLimiter::new(100, 8);
        assert_eq!(
            limiter.line("k", 0, "provider down").as_deref(),
            Some("provider down")
        );
        assert_eq!(limiter.line("k", 50, "provider down"), None);
        assert_eq!(limiter.line("k", 60, "provider down"), None);
        assert_eq!(
            limiter.line("k", 100, "provider down").as_deref(),
            Some("provider down (2 similar suppressed)")
        );
    }

    #[test]
    fn many_keys_share_one_overflow_window_so_the_table_stays_bounded() {
        let mut limiter = LogLimiter::new(10_000, 4);
        let admitted = (0..1_000u32).filter(|k| limiter.admit(*k, 5).is_some()).count();
        assert_eq!(admitted, 5, "four keys and the overflow window");
        assert_eq!(limiter.keys(), 4);
        assert_eq!(
            limiter.admit(999, 10_005),
            Some(995),
            "the overflow window counted the rest"
        );
    }

    #[test]
    fn a_clock_that_goes_backwards_admits_nothing_extra() {
        let mut limiter = LogLimiter::new(10_000, 4);
        assert_eq!(limiter.admit("k", 50_000), Some(0));
        assert_eq!(limiter.admit("k", 0), None);
        assert_eq!(limiter.admit("k", 60_000), Some(1));
    }

    #[test]
    fn a_thousand_failures_a_second_for_a_minute_log_six_lines_per_key() {
        let mut limiter = LogLimiter::new(WARNING_INTERVAL_MS, MAX_WARNING_KEYS);
        let mut lines = 0;
        let mut suppressed = 0;
        for t in 0..60_000u64 {
            if let Some(n) = limiter.admit("kc/bad_status", t) {
                lines += 1;
                suppressed += n;
            }
        }
        assert_eq!(lines, 6);
        assert_eq!(
            lines + suppressed + limiter.windows[0].suppressed,
            60_000,
            "nothing is lost"
        );
    }
}
