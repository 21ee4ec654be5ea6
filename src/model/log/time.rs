//! Times as the server writes them in its log (`%t`, `%m`, csvlog's and
//! jsonlog's `log_time`/`timestamp`) and in a record's `at`, as milliseconds
//! since the epoch. Only a time whose zone is known counts: UTC, GMT, `Z` or a
//! numeric offset. A zone abbreviation such as `CET` is not read (its offset
//! is not in the text), and the caller says so rather than guess.

/// Milliseconds since the epoch of `text`: `YYYY-MM-DD[ T]HH:MM:SS[.frac]`
/// and a zone (` UTC`, ` GMT`, `Z`, `+HH`, `+HH:MM`, `+HHMM`, or those with `-`).
pub(crate) fn epoch_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = (text.get(..10)?, text.get(10..)?);
    let rest = rest.strip_prefix(['T', ' '])?;
    let (clock, zone) = rest.split_at(
        rest.find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))?
            .min(rest.len()),
    );
    let number = |s: &str| s.parse::<i64>().ok();
    let mut ymd = date.split('-');
    let (y, m, d) = (
        number(ymd.next()?)?,
        number(ymd.next()?)?,
        number(ymd.next()?)?,
    );
    let mut hms = clock.split(':');
    let (h, min) = (number(hms.next()?)?, number(hms.next()?)?);
    let mut seconds = hms.next()?.split('.');
    let s = number(seconds.next()?)?;
    // The fraction's first three digits: milliseconds.
    let millis = match seconds.next() {
        Some(frac) => number(&format!("{frac:0<3}")[..3])?,
        None => 0,
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let offset = zone_offset(zone.trim())?;
    Some((days_from_civil(y, m, d) * 86_400 + h * 3_600 + min * 60 + s - offset) * 1_000 + millis)
}

/// The offset from UTC, in seconds, of a zone as written after a time.
fn zone_offset(zone: &str) -> Option<i64> {
    match zone {
        "UTC" | "GMT" | "Z" | "+00" | "-00" => return Some(0),
        _ => {}
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    Some(sign * (hours * 3_600 + minutes * 60))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `millis` since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`, for messages.
pub(crate) fn utc_text(millis: i64) -> String {
    let seconds = millis.div_euclid(1_000);
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    // Civil from days (the inverse of the above).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        millis.rem_euclid(1_000)
    )
}

/// The moment `since` before `now` (milliseconds since the epoch), or why
/// there is none: a zero window shows nothing clean, and one that reaches
/// before the epoch is no window a log holds (it would wrap, too).
pub(crate) fn cutoff(now: i64, since: std::time::Duration) -> anyhow::Result<i64> {
    if since.is_zero() {
        anyhow::bail!("--since 0 covers no time: no record could show a table dirty, so none is shown clean (give the window the log covers, e.g. 7d)");
    }
    i64::try_from(since.as_millis())
        .ok()
        .and_then(|back| now.checked_sub(back))
        .filter(|cutoff| *cutoff >= 0)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--since {} reaches back before 1970: no log holds that window",
                humantime::format_duration(since)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_times_read_in_every_form_it_writes() {
        let t = 1_795_755_600_000; // 2026-11-27 05:00:00 UTC
        for (text, millis) in [
            ("2026-11-27 05:00:00 UTC", 0),
            ("2026-11-27 05:00:00.123 UTC", 123),
            ("2026-11-27 05:00:00 GMT", 0),
            ("2026-11-27T05:00:00.123456+00:00", 123),
            ("2026-11-27T07:00:00+02:00", 0),
            ("2026-11-27 00:30:00-0430", 0),
            ("2026-11-27T05:00:00Z", 0),
            ("2026-11-27 06:00:00.5+01", 500),
        ] {
            assert_eq!(epoch_millis(text), Some(t + millis), "{text}");
        }
        for unknown in [
            "2026-11-27 05:00:00 CET",
            "2026-11-27 05:00:00",
            "yesterday",
            "2026-13-27 05:00:00 UTC",
        ] {
            assert_eq!(epoch_millis(unknown), None, "{unknown}");
        }
        assert_eq!(utc_text(t + 42), "2026-11-27 05:00:00.042 UTC");
        assert_eq!(epoch_millis(&utc_text(t + 42)), Some(t + 42));
    }
}
