//! When a schedule fires: a cron expression in an IANA time zone
//! ([`Cron`]), and the next tick after a given instant, by the rules of
//! daylight saving time, for every expression alike:
//!
//! - a local time that does not exist (the clocks jumped over it) fires
//!   once, at the first instant after the jump;
//! - a local time that occurs twice (the clocks went back over it) fires
//!   once, at its first occurrence (so an expression every quarter hour
//!   makes no tick in the repeated hour).
//!
//! The expression is matched against wall-clock (local) times, which are
//! then placed in the zone: parsing and matching are croner's (which
//! follows the cron standards), the zones chrono-tz's copy of the IANA
//! database.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset as _, TimeZone, Utc};
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

/// The longest a DST gap is searched across (no zone's is near a day).
const LONGEST_GAP_MINUTES: i64 = 24 * 60;

impl Cron {
    /// `expression` (five fields, minute first; or six, seconds first; or
    /// a nickname such as `@daily`) read in `timezone` (an IANA name such
    /// as `Europe/Berlin`, or `UTC`). A bad one is refused naming `cron` or
    /// `timezone`. (Whether it ever fires is [`Cron::fires_after`]'s.)
    pub fn parse(expression: &str, timezone: &str) -> Result<Cron, Invalid> {
        let zone = Tz::from_str(timezone).map_err(|_| {
            Invalid::new(
                "timezone",
                format!(
                    "{timezone:?} is not an IANA time zone name (such as \"UTC\" or \"Europe/Berlin\")"
                ),
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
        Ok(Cron {
            expression: expression.to_string(),
            zone,
            pattern,
        })
    }

    /// Refuses, naming `cron`, an expression with no tick after `now`
    /// (February 31st): croner gives up searching far ahead.
    pub fn fires_after(&self, now: DateTime<Utc>) -> Result<(), Invalid> {
        match self.next_after(now) {
            Some(_) => Ok(()),
            None => Err(Invalid::new(
                "cron",
                format!("{:?} never fires", self.expression),
            )),
        }
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
        // From the wall-clock time of `t` (its first occurrence, if it
        // occurs twice: a tick found there may come before `t`, and is
        // passed over).
        let mut local = t.with_timezone(&self.zone).naive_local();
        loop {
            local = self.pattern.find_next_occurrence(&local, false).ok()?;
            let tick = self.place(local)?;
            if tick > t {
                return Some(tick);
            }
        }
    }

    /// The last tick strictly before `t`, if there is one.
    pub fn last_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = t.with_timezone(&self.zone);
        let mut local = at.naive_local();
        if let LocalResult::Ambiguous(first, _) = self.zone.from_local_datetime(&local) {
            // `t` is in a repeated hour: the wall-clock times after its own
            // in that hour had their (first) occurrence before it.
            let repeat =
                first.offset().fix().local_minus_utc() - at.offset().fix().local_minus_utc();
            local += chrono::Duration::seconds(i64::from(repeat));
        }
        // A tick at `t`'s own wall-clock second (or, if `t` is within a
        // second, just before it) counts too.
        local += chrono::Duration::seconds(1);
        loop {
            local = self.pattern.find_previous_occurrence(&local, false).ok()?;
            let tick = self.place(local)?;
            if tick < t {
                return Some(tick);
            }
        }
    }

    /// The first `n` ticks after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(self.next_after(t), |tick| self.next_after(*tick))
            .take(n)
            .collect()
    }

    /// The instant of a wall-clock tick in the zone: its first occurrence
    /// if it occurs twice; the first instant after the jump if the clocks
    /// jumped over it. (Several wall-clock ticks in one gap all land on
    /// that instant, which fires once: the callers keep only ticks past
    /// the one before.)
    fn place(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
            LocalResult::None => {
                // The first valid minute after it, then back second by
                // second to where the gap ends.
                let minute = (1..=LONGEST_GAP_MINUTES)
                    .map(|m| local + chrono::Duration::minutes(m))
                    .find(|later| self.zone.from_local_datetime(later).single().is_some())?;
                let end = (0..60)
                    .rev()
                    .map(|s| minute - chrono::Duration::seconds(s))
                    .find(|later| self.zone.from_local_datetime(later).single().is_some())?;
                self.zone
                    .from_local_datetime(&end)
                    .single()
                    .map(|at| at.with_timezone(&Utc))
            }
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
    fn a_jumped_over_time_fires_once_whatever_the_expression() {
        // Two hours, and two minutes of one hour: 02:00 and 02:30 do not
        // exist on 2026-03-29 in Berlin; each fires at 03:00, once.
        assert_eq!(
            ticks("0 2,14 * * *", "Europe/Berlin", "2026-03-28T20:00:00Z", 2),
            ["2026-03-29T01:00:00+00:00", "2026-03-29T12:00:00+00:00"]
        );
        assert_eq!(
            ticks("0,30 2,3 * * *", "Europe/Berlin", "2026-03-28T20:00:00Z", 3),
            [
                "2026-03-29T01:00:00+00:00", // 02:00 and 02:30 and 03:00: once
                "2026-03-29T01:30:00+00:00", // 03:30 CEST
                "2026-03-30T00:00:00+00:00"  // 02:00 CEST the next day
            ]
        );
        // Every second across the jump: 01:59:59 CET, then 03:00:00 CEST.
        assert_eq!(
            ticks("* * * * * *", "Europe/Berlin", "2026-03-29T00:59:58Z", 3),
            [
                "2026-03-29T00:59:59+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-29T01:00:01+00:00"
            ]
        );
        let cron = Cron::parse("0,30 2,3 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            cron.last_before(at("2026-03-29T01:30:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
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
            ("* * * * *", "Mars/Olympus", "timezone"),
            ("* * * * *", "", "timezone"),
        ] {
            let err = Cron::parse(cron, zone).unwrap_err();
            assert_eq!(err.field, field, "{cron:?} in {zone:?}: {err}");
        }
        let never = Cron::parse("0 0 31 2 *", "UTC").unwrap();
        assert_eq!(
            never
                .fires_after(at("2026-01-01T00:00:00Z"))
                .unwrap_err()
                .field,
            "cron"
        );
        let leap = Cron::parse("0 0 29 2 *", "UTC").unwrap();
        assert!(leap.fires_after(at("2026-12-07T00:00:00Z")).is_ok());
        let daily = Cron::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_after(at("2026-01-01T10:00:00Z")),
            Some(at("2026-01-02T00:00:00Z"))
        );
    }
}
