//! When a schedule fires: a cron expression in an IANA time zone
//! ([`Cron`]), and the next tick after a given instant, by the rules of
//! daylight saving time:
//!
//! - a local time that does not exist (the clocks jumped over it) fires
//!   once, at the first instant after the jump;
//! - a local time that occurs twice (the clocks went back over it) fires
//!   once, at its first occurrence.
//!
//! Parsing and matching are croner's (which follows the cron standards);
//! the zones are chrono-tz's copy of the IANA database.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, SubsecRound as _, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};

use super::Invalid;

/// A cron expression and the time zone it is read in.
#[derive(Clone)]
pub struct Cron {
    expression: String,
    zone: Tz,
    pattern: croner::Cron,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?} in {})", self.expression, self.zone.name())
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.expression == other.expression && self.zone == other.zone
    }
}

impl Cron {
    /// `expression` (five fields, minute first; or six, seconds first; or
    /// a nickname such as `@daily`) read in `timezone` (an IANA name such
    /// as `Europe/Berlin`, or `UTC`). A bad one is refused naming `cron` or
    /// `timezone`; so is one that never fires (`0 0 31 2 *`).
    pub fn parse(expression: &str, timezone: &str) -> Result<Cron, Invalid> {
        let zone = Tz::from_str(timezone).map_err(|_| {
            Invalid::new(
                "timezone",
                format!("{timezone:?} is not an IANA time zone name (such as \"UTC\" or \"Europe/Berlin\")"),
            )
        })?;
        let expression = expression.trim();
        let fields = expression.split_whitespace().count();
        if !expression.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(Invalid::new(
                "cron",
                format!(
                    "{expression:?} has {fields} fields; give five (minute hour day-of-month month day-of-week) or six (seconds first)"
                ),
            ));
        }
        let pattern = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| {
                Invalid::new(
                    "cron",
                    format!("{expression:?} is not a cron expression: {e}"),
                )
            })?;
        let cron = Cron {
            expression: expression.to_string(),
            zone,
            pattern,
        };
        // Searching far ahead for a date that never comes (February 31st)
        // is croner's error, not a tick: refuse such an expression now.
        if cron.next_after(Utc::now()).is_none() {
            return Err(Invalid::new("cron", format!("{expression:?} never fires")));
        }
        Ok(cron)
    }

    /// The expression, as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's IANA name.
    pub fn timezone(&self) -> &str {
        self.zone.name()
    }

    /// The first tick strictly after `t`; `None` if there is none within
    /// croner's search horizon (an expression that never fires).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = t.with_timezone(&self.zone);
        loop {
            let tick = self.pattern.find_next_occurrence(&from, false).ok()?;
            if !self.repeats(&tick) {
                return Some(tick.with_timezone(&Utc));
            }
            from = tick;
        }
    }

    /// The last tick strictly before `t`, if there is one.
    pub fn last_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Ticks fall on whole seconds, and croner reads a time by its whole
        // seconds: before 10:00:00.5 is at or before 10:00:00.
        let whole = t.trunc_subsecs(0);
        let t = if whole < t {
            whole + chrono::Duration::seconds(1)
        } else {
            t
        };
        let mut from = t.with_timezone(&self.zone);
        loop {
            let tick = self.pattern.find_previous_occurrence(&from, false).ok()?;
            if !self.repeats(&tick) {
                return Some(tick.with_timezone(&Utc));
            }
            from = tick;
        }
    }

    /// The first `n` ticks after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(self.next_after(t), |tick| self.next_after(*tick))
            .take(n)
            .collect()
    }

    /// Whether `tick` is the second occurrence of its local time (the
    /// clocks went back over it): the first one fired already.
    fn repeats(&self, tick: &DateTime<Tz>) -> bool {
        match self.zone.from_local_datetime(&tick.naive_local()) {
            LocalResult::Ambiguous(first, _) => first != *tick,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn ticks(cron: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let cron = Cron::parse(cron, zone).unwrap();
        cron.upcoming(at(from), n)
            .into_iter()
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn five_fields_fire_by_the_minute_and_six_by_the_second() {
        assert_eq!(
            ticks("*/20 * * * *", "UTC", "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01T00:20:00+00:00",
                "2026-01-01T00:40:00+00:00",
                "2026-01-01T01:00:00+00:00"
            ]
        );
        assert_eq!(
            ticks("*/2 * * * * *", "UTC", "2026-01-01T00:00:00.500Z", 2),
            ["2026-01-01T00:00:02+00:00", "2026-01-01T00:00:04+00:00"]
        );
        assert_eq!(
            ticks("0 9 * * MON", "UTC", "2026-12-07T10:00:00Z", 1),
            ["2026-12-14T09:00:00+00:00"]
        );
    }

    #[test]
    fn a_zone_moves_the_ticks() {
        // 09:00 in Tokyo (UTC+9, no daylight saving) is midnight UTC.
        assert_eq!(
            ticks("0 9 * * *", "Asia/Tokyo", "2026-06-01T01:00:00Z", 1),
            ["2026-06-02T00:00:00+00:00"]
        );
    }

    #[test]
    fn a_local_time_the_clocks_jump_over_fires_once_at_the_first_instant_after() {
        // Berlin, 2026-03-29: 02:00 local becomes 03:00 (01:00 UTC).
        assert_eq!(
            ticks("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            [
                "2026-03-29T01:00:00+00:00", // 03:00 CEST, once
                "2026-03-30T00:30:00+00:00"  // 02:30 CEST the next day
            ]
        );
        // Every quarter hour: 02:00 to 02:45 do not exist; 03:00 fires once.
        assert_eq!(
            ticks("*/15 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", 4),
            [
                "2026-03-29T00:45:00+00:00", // 01:45 CET
                "2026-03-29T01:00:00+00:00", // 03:00 CEST
                "2026-03-29T01:15:00+00:00",
                "2026-03-29T01:30:00+00:00"
            ]
        );
    }

    #[test]
    fn a_local_time_that_occurs_twice_fires_once() {
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC), so
        // 02:00 to 02:59 occur twice.
        assert_eq!(
            ticks("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            [
                "2026-10-25T00:30:00+00:00", // 02:30 CEST, and not 02:30 CET
                "2026-10-26T01:30:00+00:00"
            ]
        );
        assert_eq!(
            ticks("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
            [
                "2026-10-25T00:00:00+00:00", // 02:00 CEST
                "2026-10-25T02:00:00+00:00", // 03:00 CET: 02:00 CET was skipped
                "2026-10-25T03:00:00+00:00"
            ]
        );
        let quarter = ticks("*/15 * * * *", "Europe/Berlin", "2026-10-24T23:50:00Z", 6);
        assert_eq!(
            quarter,
            [
                "2026-10-25T00:00:00+00:00",
                "2026-10-25T00:15:00+00:00",
                "2026-10-25T00:30:00+00:00",
                "2026-10-25T00:45:00+00:00",
                "2026-10-25T02:00:00+00:00",
                "2026-10-25T02:15:00+00:00"
            ]
        );
    }

    #[test]
    fn the_last_tick_before_skips_repeats_too() {
        let cron = Cron::parse("0 * * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            cron.last_before(at("2026-10-25T02:00:00Z")),
            Some(at("2026-10-25T00:00:00Z"))
        );
        assert_eq!(
            cron.last_before(at("2026-10-25T02:00:01Z")),
            Some(at("2026-10-25T02:00:00Z"))
        );
        let every_second = Cron::parse("* * * * * *", "UTC").unwrap();
        assert_eq!(
            every_second.last_before(at("2026-01-01T00:00:19.5Z")),
            Some(at("2026-01-01T00:00:19Z"))
        );
        assert_eq!(
            every_second.next_after(at("2026-01-01T00:00:19.5Z")),
            Some(at("2026-01-01T00:00:20Z"))
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_naming_the_field() {
        for (cron, zone, field) in [
            ("* * * *", "UTC", "cron"),
            ("* * * * * * *", "UTC", "cron"),
            ("61 * * * *", "UTC", "cron"),
            ("", "UTC", "cron"),
            ("every day", "UTC", "cron"),
            ("0 0 31 2 *", "UTC", "cron"),
            ("* * * * *", "Mars/Olympus", "timezone"),
            ("* * * * *", "", "timezone"),
        ] {
            let err = Cron::parse(cron, zone).unwrap_err();
            assert_eq!(err.field, field, "{cron:?} in {zone:?}: {err}");
        }
        let daily = Cron::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_after(at("2026-01-01T10:00:00Z")),
            Some(at("2026-01-02T00:00:00Z"))
        );
    }
}
