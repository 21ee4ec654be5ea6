//! Whether log files the operator named leave a rotated file out. A server
//! rotates its log into files named by `log_filename`; RDS's
//! (`postgresql.log.%Y-%m-%d-%H`) and daily patterns name each file by the
//! hour or day it was opened. A file is left out when a whole hour (or day)
//! lies between one file's last entry and the next file's opening: under
//! hourly rotation that hour had a file of its own, and under slower rotation
//! the earlier file would have run on into it. Names finer than the hour
//! (`%H%M%S`, the server's default) or with no date (logrotate's `.1`) say
//! nothing of the rotation and are not judged.

use super::time::days_from_civil;
use super::FileRead;

/// How finely a file name tells when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Hour,
    Day,
}

/// The hour or day (counted from the epoch, in the server's own clock) a
/// file `name` was opened, when its name tells it no finer than that.
fn opened(name: &str) -> Option<(Grain, i64)> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let bytes = base.as_bytes();
    let digits = |at: usize, n: usize| -> Option<i64> {
        let part = base.get(at..at + n)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let start = (0..bytes.len()).find(|&i| {
        digits(i, 4).is_some()
            && bytes.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2).is_some()
            && bytes.get(i + 7) == Some(&b'-')
            && digits(i + 8, 2).is_some()
    })?;
    let (y, m, d) = (
        digits(start, 4)?,
        digits(start + 5, 2)?,
        digits(start + 8, 2)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    let after = start + 10;
    let separated = matches!(bytes.get(after), Some(b'-' | b'_' | b'T'));
    match (separated, digits(after + 1, 2)) {
        (true, Some(hour)) if hour < 24 => {
            // minutes after the hour: a finer name, not judged
            if bytes.get(after + 3).is_some_and(u8::is_ascii_digit) {
                None
            } else {
                Some((Grain::Hour, day * 24 + hour))
            }
        }
        _ if bytes.get(after).is_some_and(u8::is_ascii_digit) => None,
        _ => Some((Grain::Day, day)),
    }
}

/// The hour or day of an entry's time as the server wrote it
/// (`2026-12-07 21:04:05.123 UTC`): the same clock as the file names.
fn entry_unit(time: &str, grain: Grain) -> Option<i64> {
    let digits = |range: std::ops::Range<usize>| time.get(range)?.parse::<i64>().ok();
    let day = days_from_civil(digits(0..4)?, digits(5..7)?, digits(8..10)?);
    Some(match grain {
        Grain::Day => day,
        Grain::Hour => day * 24 + digits(11..13)?,
    })
}

/// The unit as the file names write it, for messages.
fn unit_text(grain: Grain, unit: i64) -> String {
    let (day, hour) = match grain {
        Grain::Day => (unit, None),
        Grain::Hour => (unit.div_euclid(24), Some(unit.rem_euclid(24))),
    };
    let date = super::time::utc_text(day * 86_400_000);
    match hour {
        Some(h) => format!("{} {h:02}h", &date[..10]),
        None => date[..10].to_string(),
    }
}

/// The first place where `files` leave a rotated file out, as a sentence;
/// `None` when they run on, or when their names do not tell.
pub(crate) fn left_out(files: &[FileRead]) -> Option<String> {
    let mut named: Vec<(i64, &FileRead)> = Vec::new();
    let mut grain = None;
    for file in files {
        let (g, unit) = opened(&file.name)?;
        if grain.is_some_and(|seen| seen != g) {
            return None;
        }
        grain = Some(g);
        named.push((unit, file));
    }
    let grain = grain?;
    named.sort_by_key(|(unit, _)| *unit);
    for pair in named.windows(2) {
        let ((a_opened, a), (b_opened, b)) = (pair[0], pair[1]);
        let a_end = a
            .last_entry
            .as_deref()
            .and_then(|t| entry_unit(t, grain))
            .map_or(a_opened, |last| last.max(a_opened));
        if b_opened > a_end + 1 {
            let missing = if b_opened == a_end + 2 {
                unit_text(grain, a_end + 1)
            } else {
                format!(
                    "{} to {}",
                    unit_text(grain, a_end + 1),
                    unit_text(grain, b_opened - 1)
                )
            };
            return Some(format!(
                "{} ends {} and {} opens {}: the log of {missing} is not among the files read (a rotated file left \
                 out), and a record may be in it; pass every file in between",
                a.name,
                a.last_entry
                    .as_deref()
                    .map_or_else(|| "with no entry".to_string(), |t| format!("at {t}")),
                b.name,
                unit_text(grain, b_opened)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, last: Option<&str>) -> FileRead {
        FileRead {
            name: name.into(),
            last_entry: last.map(String::from),
            ..FileRead::default()
        }
    }

    #[test]
    fn names_tell_the_hour_or_day_a_file_was_opened_or_nothing() {
        let hour = |n| opened(n).map(|(g, u)| (g, unit_text(g, u)));
        assert_eq!(
            hour("/rdsdbdata/log/error/postgresql.log.2026-12-07-21"),
            Some((Grain::Hour, "2026-12-07 21h".into()))
        );
        assert_eq!(
            hour("postgresql-2026-12-07.log"),
            Some((Grain::Day, "2026-12-07".into()))
        );
        assert_eq!(hour("postgresql-2026-12-07_210000.log"), None);
        assert_eq!(hour("postgresql-2026-12-07_2100.csv"), None);
        assert_eq!(hour("postgresql-15-main.log.1"), None);
        assert_eq!(hour("postgresql.log.2026-13-07-21"), None);
    }

    #[test]
    fn an_hour_between_files_with_no_file_is_left_out() {
        let at = |h: u32| format!("2026-12-07 {h:02}:59:01.000 UTC");
        let hourly = |hours: &[u32]| -> Vec<FileRead> {
            hours
                .iter()
                .map(|h| file(&format!("postgresql.log.2026-12-07-{h:02}"), Some(&at(*h))))
                .collect()
        };
        assert_eq!(left_out(&hourly(&[20, 21, 22])), None);
        // given in any order
        assert_eq!(left_out(&hourly(&[22, 20, 21])), None);
        let gap = left_out(&hourly(&[20, 22])).unwrap();
        assert!(
            gap.contains("the log of 2026-12-07 21h is not among"),
            "{gap}"
        );
        let gap = left_out(&hourly(&[8, 12])).unwrap();
        assert!(gap.contains("09h to 2026-12-07 11h"), "{gap}");
        // A daily rotation with hourly names: the file runs on to its next.
        let daily = [
            file(
                "postgresql.log.2026-12-06-00",
                Some("2026-12-06 23:58:00 UTC"),
            ),
            file(
                "postgresql.log.2026-12-07-00",
                Some("2026-12-07 10:00:00 UTC"),
            ),
        ];
        assert_eq!(left_out(&daily), None);
        // A file with no entry at all ends at its opening.
        let empty = [
            file("postgresql.log.2026-12-07-20", None),
            file("postgresql.log.2026-12-07-22", None),
        ];
        assert!(left_out(&empty).unwrap().contains("with no entry"));
        // Names that do not tell, or tell differently, are not judged.
        let mixed = [
            file("postgresql.log.2026-12-07-20", None),
            file("postgresql-2026-12-09.log", None),
        ];
        assert_eq!(left_out(&mixed), None);
        assert_eq!(
            left_out(&[file("server.log", None), file("old.log", None)]),
            None
        );
    }
}
