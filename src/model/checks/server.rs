//! VER001: the server itself may be the leak. PostgreSQL has shipped fixes
//! for bugs that let a role see or write rows row security should stop;
//! each row below is one, with the first fixed minor of each affected major,
//! from PostgreSQL's security page (postgresql.org/support/security/) and the
//! release notes. RDS lags minor releases, so the nightly run says which the
//! server lacks. A warning, not a failure: the operator may not be able to
//! upgrade tonight.

use super::{Finding, Findings, VER001};
use crate::model::snapshot::Snapshot;

/// One fixed row-security bug.
pub(crate) struct KnownBug {
    /// The CVE.
    pub(crate) cve: &'static str,
    /// What it lets a role do, in one line.
    pub(crate) effect: &'static str,
    /// `(major, first fixed minor)` for each affected major; a major not
    /// listed never had the bug (or shipped with the fix).
    pub(crate) fixed: &'static [(u32, u32)],
}

/// The row-security bugs PostgreSQL has fixed, oldest first.
pub(crate) const KNOWN_BUGS: &[KnownBug] = &[
    KnownBug {
        cve: "CVE-2023-2455",
        effect: "row security policies disregard user ID changes after inlining: a query planned as one role runs with another's policies",
        fixed: &[(11, 20), (12, 15), (13, 11), (14, 8), (15, 3)],
    },
    KnownBug {
        cve: "CVE-2023-39418",
        effect: "MERGE does not enforce UPDATE or SELECT row security policies",
        fixed: &[(15, 4)],
    },
    KnownBug {
        cve: "CVE-2024-4317",
        effect: "pg_stats_ext and pg_stats_ext_exprs show other roles' tables' most common values to any user",
        fixed: &[(14, 12), (15, 7), (16, 3)],
    },
    KnownBug {
        cve: "CVE-2024-10976",
        effect: "row security below subqueries disregards user ID changes: policies of the wrong role apply",
        fixed: &[(12, 21), (13, 17), (14, 14), (15, 9), (16, 5), (17, 1)],
    },
    KnownBug {
        cve: "CVE-2024-10978",
        effect: "SET ROLE and SET SESSION AUTHORIZATION reset to the wrong user ID: a session can act as a role it had left",
        fixed: &[(12, 21), (13, 17), (14, 14), (15, 9), (16, 5), (17, 1)],
    },
    KnownBug {
        cve: "CVE-2025-8713",
        effect: "optimizer statistics expose sampled rows of a view, partition or child table the user may not read past row security",
        fixed: &[(13, 22), (14, 19), (15, 14), (16, 10), (17, 6)],
    },
];

/// The last day of community support of each major (PostgreSQL's
/// versioning policy): past it, no fix comes at all.
const END_OF_LIFE: &[(u32, &str)] = &[
    (11, "2023-11-09"),
    (12, "2024-11-21"),
    (13, "2025-11-13"),
    (14, "2026-11-12"),
    (15, "2027-11-11"),
    (16, "2028-11-09"),
    (17, "2029-11-08"),
    (18, "2030-11-14"),
];

/// `(major, minor)` of `server_version_num` (`150018`: 15.18).
pub(crate) fn version_of_num(num: i32) -> Option<(u32, u32)> {
    let num = u32::try_from(num).ok()?;
    (num >= 100_000).then_some((num / 10_000, num % 100))
}

/// `(major, minor)` of a version string as servers report it: `15.18
/// (Debian 15.18-0+deb12u1)`, RDS's `16.3`, `version()`'s `PostgreSQL 15.4
/// on aarch64-unknown-linux-gnu, compiled by …` (Aurora's too), a build
/// suffix (`16.3-R2`); `None` for a beta or development build.
pub(crate) fn version_of_text(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    let text = text.strip_prefix("PostgreSQL ").unwrap_or(text);
    let word = text.split_whitespace().next()?;
    let (major, rest) = word.split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[minor.len()..];
    if minor.is_empty() || !(after.is_empty() || after.starts_with(['-', '+', '_'])) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The known bugs `(major, minor)` lacks the fix of.
pub(crate) fn lacking(major: u32, minor: u32) -> Vec<&'static KnownBug> {
    KNOWN_BUGS
        .iter()
        .filter(|bug| {
            bug.fixed
                .iter()
                .any(|&(m, fixed)| m == major && minor < fixed)
        })
        .collect()
}

/// VER001 on `snap`'s server (`server_version`: its version as it reports
/// it, read when the number says nothing), as of `today` (`YYYY-MM-DD`), for
/// its end of life.
pub(crate) fn ver001(snap: &Snapshot, server_version: &str, today: &str, findings: &mut Findings) {
    let version =
        version_of_num(snap.session.server_version_num).or_else(|| version_of_text(server_version));
    let Some((major, minor)) = version else {
        findings.check(
            &VER001,
            Vec::new(),
            "a development or beta build: no known bug is looked up",
        );
        return;
    };
    let version = format!("{major}.{minor}");
    let mut problems: Vec<Finding> = lacking(major, minor)
        .into_iter()
        .map(|bug| {
            let to = bug
                .fixed
                .iter()
                .find(|(m, _)| *m == major)
                .map(|(m, fixed)| format!("{m}.{fixed}"))
                .unwrap_or_default();
            Finding::problem(
                &VER001,
                bug.cve,
                format!("PostgreSQL {version} lacks the fix for {}: {}; fixed in {to}", bug.cve, bug.effect),
                format!("upgrade to {to} or later (on RDS: modify the instance's engine version to the latest {major} minor)"),
            )
        })
        .collect();
    // The fix of CVE-2024-4317 reaches a database created before it only
    // through the script shipped with it.
    if lacking(major, minor)
        .iter()
        .all(|b| b.cve != "CVE-2024-4317")
        && major >= 14
        && !snap.session.stats_ext_private
    {
        problems.push(Finding::problem(
            &VER001,
            "CVE-2024-4317",
            "pg_stats_ext or pg_stats_ext_exprs in this database shows the statistics of tables the user does not own: the server has the fix, but this database was created before it and its script was not run (or the views were replaced since)",
            "as the superuser (on RDS, the master), run share/fix-CVE-2024-4317.sql of the server's version in this database",
        ));
    }
    let eol = END_OF_LIFE
        .iter()
        .find(|(m, _)| *m == major)
        .filter(|(_, day)| *day < today)
        .map(|(_, day)| format!("; PostgreSQL {major} is past its end of life ({day}): no fix for what is found next will come"));
    let eol = eol.unwrap_or_default();
    for finding in &mut problems {
        finding.detail.push_str(&eol);
    }
    findings.check(
        &VER001,
        problems,
        format!("PostgreSQL {version} has every known row-security fix{eol}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_strings_as_servers_write_them() {
        for (text, version) in [
            ("15.18 (Debian 15.18-0+deb12u1)", Some((15, 18))),
            ("16.3", Some((16, 3))),
            ("PostgreSQL 15.4 on aarch64-unknown-linux-gnu, compiled by aarch64-unknown-linux-gnu-gcc (GCC) 9.5.0, 64-bit", Some((15, 4))),
            ("16.3-R2", Some((16, 3))),
            ("17.10", Some((17, 10))),
            ("18beta1", None),
            ("17devel", None),
            ("18rc1", None),
        ] {
            assert_eq!(version_of_text(text), version, "{text}");
        }
        assert_eq!(version_of_num(150018), Some((15, 18)));
        assert_eq!(version_of_num(180000), Some((18, 0)));
        assert_eq!(version_of_num(90624), None);
    }

    #[test]
    fn each_version_lacks_exactly_the_fixes_after_it() {
        let cves =
            |major, minor| -> Vec<&str> { lacking(major, minor).iter().map(|b| b.cve).collect() };
        assert_eq!(
            cves(15, 2),
            [
                "CVE-2023-2455",
                "CVE-2023-39418",
                "CVE-2024-4317",
                "CVE-2024-10976",
                "CVE-2024-10978",
                "CVE-2025-8713"
            ]
        );
        assert_eq!(
            cves(15, 8),
            ["CVE-2024-10976", "CVE-2024-10978", "CVE-2025-8713"]
        );
        assert_eq!(cves(16, 9), ["CVE-2025-8713"]);
        assert_eq!(cves(16, 10), Vec::<&str>::new());
        assert_eq!(cves(13, 21), ["CVE-2025-8713"]);
        // MERGE came in 15; pg_stats_ext_exprs in 14.
        assert!(!cves(14, 1).contains(&"CVE-2023-39418"));
        assert!(!cves(13, 1).contains(&"CVE-2024-4317"));
        assert_eq!(cves(18, 0), Vec::<&str>::new());
    }
}
