//! Value types of `config.toml` that TOML has no word for: Go durations
//! (`"1h30m"`), points in time, and the metrics listen address.
//!
//! Each one is checked while the file is deserialized, so a bad value is
//! reported at its line and column like any other type error.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer};

/// A duration written as Go's `time.ParseDuration` reads it (`"90s"`,
/// `"1h30m"`, `"1.5h"`, `"300ms"`). An integer is a count of nanoseconds:
/// gitlab-runner's TOML decoder reads `time.Duration` fields that way, and a
/// file written for it must mean the same here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Nanos(i64),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"30s\", \"15m\" or \"1h30m\"")
        })? {
            Raw::Text(text) => parse_go_duration(&text)
                .map(GoDuration)
                .map_err(serde::de::Error::custom),
            Raw::Nanos(n) => u64::try_from(n)
                .map(|n| GoDuration(Duration::from_nanos(n)))
                .map_err(|_| serde::de::Error::custom("a duration cannot be negative")),
        }
    }
}

/// Parses a Go duration. Negative durations are refused: every duration in
/// `config.toml` is a timeout or an interval.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: expected a number and a unit (ns, us, ms, s, m, h), e.g. \"1h30m\""
        )
    };
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(format!(
            "invalid duration {text:?}: a duration cannot be negative"
        ));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += value * nanos_per_unit;
    }
    // Go's limit: an int64 of nanoseconds, about 292 years.
    if total > i64::MAX as f64 {
        return Err(format!("invalid duration {text:?}: too long"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// A point in time, read from a TOML datetime (`2026-01-02T10:00:00Z`).
/// Kept as seconds and nanoseconds since the Unix epoch, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    seconds: i64,
    nanos: u32,
}

/// Go's zero `time.Time`, `0001-01-01T00:00:00Z`: what gitlab-runner
/// writes for a time it does not know (e.g. a token that never expires).
const GO_ZERO_SECONDS: i64 = -62_135_596_800;

impl Timestamp {
    pub fn from_system_time(time: SystemTime) -> Timestamp {
        match time.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let (mut seconds, mut nanos) = (-(d.as_secs() as i64), d.subsec_nanos());
                if nanos > 0 {
                    seconds -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Timestamp { seconds, nanos }
            }
        }
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.seconds >= 0 {
            UNIX_EPOCH + Duration::new(self.seconds as u64, self.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.seconds.unsigned_abs())
                + Duration::from_nanos(u64::from(self.nanos))
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.seconds
    }

    /// Whether this is Go's zero time, gitlab-runner's "unset".
    pub fn is_go_zero(self) -> bool {
        self.seconds == GO_ZERO_SECONDS && self.nanos == 0
    }

    /// Go's zero time, written for "unset" so gitlab-runner reads the file
    /// the same way.
    pub fn go_zero() -> Timestamp {
        Timestamp {
            seconds: GO_ZERO_SECONDS,
            nanos: 0,
        }
    }

    /// Parses an RFC 3339 date and time (as GitLab's API returns
    /// `token_expires_at`, e.g. `2026-04-01T10:00:00.000Z`). A value
    /// without an offset is taken as UTC.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let datetime: toml::value::Datetime = text.trim().parse().ok()?;
        Timestamp::from_toml(&datetime).ok()
    }

    /// A token's expiry as GitLab's API gives it (`token_expires_at`):
    /// `None` when absent, unreadable or Go's zero time, all of which mean
    /// that the token does not expire.
    pub fn token_expiry(text: Option<&str>) -> Option<SystemTime> {
        text.and_then(Timestamp::parse_rfc3339)
            .filter(|t| !t.is_go_zero())
            .map(Timestamp::to_system_time)
    }

    fn from_toml(datetime: &toml::value::Datetime) -> Result<Timestamp, &'static str> {
        let date = datetime
            .date
            .ok_or("expected a date and time such as 2026-01-02T10:00:00Z")?;
        let days = days_from_civil(
            i64::from(date.year),
            i64::from(date.month),
            i64::from(date.day),
        );
        let (clock, nanos) = match datetime.time {
            Some(t) => (
                i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second.min(59)),
                t.nanosecond.min(999_999_999),
            ),
            None => (0, 0),
        };
        let offset = match datetime.offset {
            Some(toml::value::Offset::Custom { minutes }) => i64::from(minutes) * 60,
            Some(toml::value::Offset::Z) | None => 0,
        };
        Ok(Timestamp {
            seconds: days * 86_400 + clock - offset,
            nanos,
        })
    }
}

/// RFC 3339 in UTC, seconds precision plus any fraction, as Go's TOML
/// encoder writes `time.Time` (e.g. `2026-01-02T10:00:00Z`).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.seconds.div_euclid(86_400);
        let clock = self.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            clock / 3600,
            clock / 60 % 60,
            clock % 60
        )?;
        if self.nanos != 0 {
            let fraction = format!("{:09}", self.nanos);
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let datetime = toml::value::Datetime::deserialize(d)?;
        Timestamp::from_toml(&datetime).map_err(serde::de::Error::custom)
    }
}

/// For `token_obtained_at`/`token_expires_at`: Go's zero time is "unset".
pub(super) fn optional_timestamp<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Timestamp>, D::Error> {
    Ok(Option::<Timestamp>::deserialize(d)?.filter(|t| !t.is_go_zero()))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// gitlab-runner's metrics port, used when `listen_address` names only a
/// host.
pub const DEFAULT_METRICS_PORT: u16 = 9252;

/// `listen_address` as gitlab-runner reads it: `host:port`, `:port`,
/// `[v6]:port`, or a bare host (`0.0.0.0`, `[::]`, `localhost`) that gets
/// port 9252.
pub(super) fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(raw) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    normalize_listen_address(&raw)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

pub(super) fn normalize_listen_address(raw: &str) -> Result<String, String> {
    let bad = |why: &str| format!("invalid listen address {raw:?}: {why}");
    let address = raw.trim();
    if address.is_empty() {
        return Err(bad("it is empty"));
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ] after the IPv6 address"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address between [ and ]"));
        }
        match after {
            "" => (address.to_owned(), None),
            _ => match after.strip_prefix(':') {
                Some(port) => (format!("[{host}]"), Some(port)),
                None => return Err(bad("expected :port after ]")),
            },
        }
    } else {
        match address.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(bad("an IPv6 address needs brackets, as in [::1]:9252"));
            }
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (address.to_owned(), None),
        }
    };
    if host.chars().any(char::is_whitespace) {
        return Err(bad("the host contains spaces"));
    }
    match port {
        None => Ok(format!("{host}:{DEFAULT_METRICS_PORT}")),
        Some(port) => match port.parse::<u16>() {
            Ok(_) => Ok(format!("{host}:{port}")),
            Err(_) => Err(bad("the port is not a number from 0 to 65535")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_like_go() {
        let d = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("15m"), Duration::from_secs(900));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("15m0s"), Duration::from_secs(900));
        assert_eq!(d("2us"), Duration::from_micros(2));
        for bad in ["", "15", "1x", "h", "1..5s", "-1s", "1h-5m"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn timestamps_convert_both_ways_and_know_go_zero() {
        let t = Timestamp::parse_rfc3339("2026-01-02T10:00:00Z").unwrap();
        assert_eq!(t.unix_seconds(), 1_767_348_000);
        assert_eq!(t.to_string(), "2026-01-02T10:00:00Z");
        let zero = Timestamp::parse_rfc3339("0001-01-01T00:00:00Z").unwrap();
        assert!(zero.is_go_zero());
        assert_eq!(zero.to_string(), "0001-01-01T00:00:00Z");
        let api = Timestamp::parse_rfc3339("2026-04-01T12:30:00.250+02:00").unwrap();
        assert_eq!(api.to_string(), "2026-04-01T10:30:00.25Z");
        let now = SystemTime::now();
        let back = Timestamp::from_system_time(now).to_system_time();
        assert_eq!(back, now);
        let before_epoch = UNIX_EPOCH - Duration::new(10, 5);
        assert_eq!(
            Timestamp::from_system_time(before_epoch).to_system_time(),
            before_epoch
        );
        assert!(Timestamp::parse_rfc3339("10:00:00").is_none());
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn a_bare_listen_host_gets_the_metrics_port() {
        let n = |s: &str| normalize_listen_address(s).unwrap();
        assert_eq!(n("0.0.0.0"), "0.0.0.0:9252");
        assert_eq!(n("localhost"), "localhost:9252");
        assert_eq!(n("[::]"), "[::]:9252");
        assert_eq!(n("[::1]:9000"), "[::1]:9000");
        assert_eq!(n("127.0.0.1:9100"), "127.0.0.1:9100");
        assert_eq!(n(":9100"), ":9100");
        for bad in ["", "::1", "host:port", "host:99999", "[::1"] {
            assert!(normalize_listen_address(bad).is_err(), "{bad:?}");
        }
    }
}
