//! Metadata that zip entries carry besides their bytes: modification times
//! and unix modes, shared by the writer and the extractor.
//!
//! A zip entry has a 2-second-resolution MS-DOS date without a time zone.
//! gitlab-runner (like Info-ZIP) adds the "extended timestamp" extra field
//! (`0x5455`) holding the exact unix time, and restores times from it on
//! extraction; we write and read it the same way. The DOS date is written
//! in UTC and only used when the extra field is missing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zip::DateTime;
use zip::extra_fields::ExtraField;

/// Header id of the extended timestamp extra field.
pub(crate) const EXTENDED_TIMESTAMP_ID: u16 = 0x5455;

/// `S_IFMT` and the file-type bits found in a zip entry's unix mode.
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;

/// What a zip entry's unix mode says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeKind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: never recreated.
    Special,
    /// No type bits (archives made on other systems).
    Unknown,
}

pub(crate) fn mode_kind(mode: u32) -> ModeKind {
    match mode & S_IFMT {
        S_IFREG => ModeKind::File,
        S_IFDIR => ModeKind::Dir,
        S_IFLNK => ModeKind::Symlink,
        0 => ModeKind::Unknown,
        _ => ModeKind::Special,
    }
}

/// Seconds since the epoch, when representable in the extended timestamp
/// (an unsigned 32-bit field, as gitlab-runner writes it).
fn unix_seconds(time: SystemTime) -> Option<u32> {
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    u32::try_from(secs).ok()
}

/// The payload of an extended timestamp field carrying `mtime`.
pub(crate) fn extended_timestamp(mtime: SystemTime) -> Option<[u8; 5]> {
    let secs = unix_seconds(mtime)?.to_le_bytes();
    // Flag bit 0: the modification time is present.
    Some([1, secs[0], secs[1], secs[2], secs[3]])
}

/// `mtime` as an MS-DOS date in UTC, clamped to the format's 1980..2107
/// range.
pub(crate) fn dos_time(mtime: SystemTime) -> DateTime {
    let secs = match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs(),
        Err(_) => 0,
    };
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let fits = u16::try_from(year).ok().and_then(|year| {
        DateTime::from_date_and_time(
            year,
            month,
            day,
            (rem / 3600) as u8,
            (rem % 3600 / 60) as u8,
            (rem % 60) as u8,
        )
        .ok()
    });
    match fits {
        Some(date) => date,
        None if year < 1980 => DateTime::DEFAULT,
        None => DateTime::from_date_and_time(2107, 12, 31, 23, 59, 58).unwrap_or_default(),
    }
}

/// The modification time recorded for an entry: the extended timestamp
/// when present, else the DOS date read as UTC.
pub(crate) fn entry_mtime<'a>(
    extra: impl Iterator<Item = &'a ExtraField>,
    dos: Option<DateTime>,
) -> Option<SystemTime> {
    for field in extra {
        if let ExtraField::ExtendedTimestamp(ts) = field
            && let Some(secs) = ts.mod_time()
        {
            return Some(UNIX_EPOCH + Duration::from_secs(u64::from(secs)));
        }
    }
    let dos = dos?;
    let days = days_from_civil(
        i64::from(dos.year()),
        u32::from(dos.month()),
        u32::from(dos.day()),
    );
    let secs = days * 86_400
        + i64::from(dos.hour()) * 3600
        + i64::from(dos.minute()) * 60
        + i64::from(dos.second());
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (i64, u8, u8) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day count since 1970-01-01 of a Gregorian date (the inverse of
/// [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [0u64, 59, 365, 10_956, 11_016, 19_782, 49_710] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m.into(), d.into()), days as i64);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn dos_time_is_utc_and_clamped() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29 12:34:56
        let dos = dos_time(t);
        let parts = (dos.year(), dos.month(), dos.day(), dos.hour(), dos.minute());
        assert_eq!(parts, (2024, 2, 29, 12, 34));
        assert_eq!(dos.second(), 56);
        assert_eq!(dos_time(UNIX_EPOCH), DateTime::DEFAULT);
        let back = entry_mtime(std::iter::empty(), Some(dos)).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn extended_timestamp_carries_the_exact_second() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_001);
        let field = extended_timestamp(t).unwrap();
        assert_eq!(field[0], 1);
        assert_eq!(
            u32::from_le_bytes(field[1..].try_into().unwrap()),
            1_700_000_001
        );
    }

    #[test]
    fn mode_kinds() {
        assert_eq!(mode_kind(0o100_755), ModeKind::File);
        assert_eq!(mode_kind(0o040_700), ModeKind::Dir);
        assert_eq!(mode_kind(0o120_777), ModeKind::Symlink);
        assert_eq!(mode_kind(0o010_644), ModeKind::Special);
        assert_eq!(mode_kind(0o644), ModeKind::Unknown);
    }
}
