//! Time for the maintenance engine: an injectable [`Clock`], cron schedules
//! in a time zone and maintenance windows.
//!
//! Everything that decides "is it time" takes the time from a [`Clock`], so
//! tests drive schedules with a [`ManualClock`] instead of waiting.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;
use croner::Cron;

/// Where the maintenance engine reads the time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, ms since the epoch.
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::now_ms()
    }
}

/// A clock that moves only when told: for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn at(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }

    /// Sets the time.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Parses a cron expression: five fields, or six with seconds first.
///
/// # Errors
///
/// croner's message.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    Cron::from_str(text.trim()).map_err(|e| format!("`{text}`: {e}"))
}

/// Whether `cron`, read in `tz`, has an occurrence after `last_ms` and no
/// later than `now_ms`: a schedule fires once however late it is noticed, and
/// not again until its next occurrence.
pub fn cron_due(cron: &Cron, tz: Tz, last_ms: i64, now_ms: i64) -> bool {
    let Some(last) = tz.timestamp_millis_opt(last_ms).single() else {
        return false;
    };
    cron.find_next_occurrence(&last, false)
        .is_ok_and(|next| next.timestamp_millis() <= now_ms)
}

/// A daily window, `HH:MM-HH:MM`, which may wrap midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: u32,
    end: u32,
}

impl Window {
    /// Parses `01:00-05:00`.
    ///
    /// # Errors
    ///
    /// A message naming the problem.
    pub fn parse(text: &str) -> Result<Window, String> {
        let minutes = |part: &str| -> Result<u32, String> {
            let (h, m) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("`{part}` is not HH:MM"))?;
            let h: u32 = h.parse().map_err(|_| format!("`{part}` is not HH:MM"))?;
            let m: u32 = m.parse().map_err(|_| format!("`{part}` is not HH:MM"))?;
            if h > 24 || m > 59 || (h == 24 && m > 0) {
                return Err(format!("`{part}` is not a time of day"));
            }
            Ok(h * 60 + m)
        };
        let (start, end) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not HH:MM-HH:MM"))?;
        Ok(Window {
            start: minutes(start)?,
            end: minutes(end)?,
        })
    }

    /// Whether `now_ms`, read in `tz`, is inside the window.
    pub fn contains(&self, tz: Tz, now_ms: i64) -> bool {
        let Some(now) = tz.timestamp_millis_opt(now_ms).single() else {
            return false;
        };
        let minute = now.hour() * 60 + now.minute();
        if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .unwrap_or_default()
    }

    #[test]
    fn a_daily_schedule_fires_once_at_its_time_in_its_zone() {
        let cron = parse_cron("0 2 * * *").expect("valid");
        let paris: Tz = "Europe/Paris".parse().expect("zone");
        let start = ms(paris, 2026, 11, 26, 0, 0);
        let clock = ManualClock::at(start);
        let mut last = start;
        let mut fired = Vec::new();
        // Walk two days in 15-minute steps, as a scheduler loop would.
        for _ in 0..(2 * 24 * 4) {
            clock.set(clock.now_ms() + 15 * 60 * 1000);
            if cron_due(&cron, paris, last, clock.now_ms()) {
                fired.push(clock.now_ms());
                last = clock.now_ms();
            }
        }
        assert_eq!(
            fired,
            vec![ms(paris, 2026, 11, 26, 2, 0), ms(paris, 2026, 11, 27, 2, 0)]
        );
        // 02:00 in Paris is 01:00 UTC in November.
        assert_eq!(fired[0], ms(chrono_tz::UTC, 2026, 11, 26, 1, 0));
    }

    #[test]
    fn a_late_check_fires_once() {
        let cron = parse_cron("*/10 * * * *").expect("valid");
        let t0 = ms(chrono_tz::UTC, 2026, 1, 1, 0, 0);
        assert!(!cron_due(&cron, chrono_tz::UTC, t0, t0 + 9 * 60_000));
        assert!(cron_due(&cron, chrono_tz::UTC, t0, t0 + 35 * 60_000));
        assert!(parse_cron("every day").is_err());
    }

    #[test]
    fn windows_may_wrap_midnight() {
        let utc = chrono_tz::UTC;
        let night = Window::parse("23:00-02:00").expect("valid");
        assert!(night.contains(utc, ms(utc, 2026, 1, 1, 23, 30)));
        assert!(night.contains(utc, ms(utc, 2026, 1, 1, 1, 59)));
        assert!(!night.contains(utc, ms(utc, 2026, 1, 1, 2, 0)));
        let day = Window::parse("01:00-05:00").expect("valid");
        assert!(day.contains(utc, ms(utc, 2026, 1, 1, 4, 0)));
        assert!(!day.contains(utc, ms(utc, 2026, 1, 1, 6, 0)));
        assert!(Window::parse("25:00-01:00").is_err());
        assert!(Window::parse("noon").is_err());
    }
}
