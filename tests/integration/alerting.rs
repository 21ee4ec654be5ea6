//! The alerting rules shipped in contrib/prometheus/ against series the real
//! binary wrote: `promtool check rules` on the file, `promtool check metrics`
//! on monitor's output, and `promtool test rules` with monitor's samples as
//! input series, on a clean database (nothing fires) and during a
//! break-glass (drift fires at once, break-glass open after 4 hours).
//! promtool comes from Debian's `prometheus` package (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

use crate::support::*;

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/prometheus/rlsctl-alerts.yml"
);

/// Runs promtool with `args` (`stdin`: what it reads); its output, or a panic naming it.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

/// `promtool check metrics` passes on `metrics` (a textfile monitor wrote).
pub fn promtool_check_metrics(metrics: &str) {
    promtool(&["check", "metrics"], Some(metrics));
}

/// A `promtool test rules` file: every sample of `metrics` as a series held
/// for 6 hours, and `alerts` (eval time, alert name, expected alerts as YAML).
fn rule_test(metrics: &str, alerts: &[(&str, &str, &str)]) -> String {
    let mut out = format!(
        "rule_files:\n  - {RULES}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n"
    );
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        out.push_str(&format!(
            "      - series: '{}'\n        values: '{value}+0x360'\n",
            series.replace('\'', "''")
        ));
    }
    out.push_str("    alert_rule_test:\n");
    for (at, name, expected) in alerts {
        out.push_str(&format!(
            "      - eval_time: {at}\n        alertname: {name}\n        exp_alerts: {expected}\n"
        ));
    }
    out
}

async fn prometheus(t: &TestDb) -> String {
    let run = t
        .run_env(&["monitor", "--format", "prometheus"], &AS_APP)
        .await;
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    promtool_check_metrics(&run.stdout);
    run.stdout
}

fn test_rules(t: &TestDb, name: &str, text: &str) {
    let file = t.sandbox.dir().join(name);
    std::fs::write(&file, text).unwrap();
    promtool(&["test", "rules", file.to_str().unwrap()], None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_alerts_fire_on_the_binarys_own_series() {
    assert!(Path::new(RULES).exists());
    promtool(&["check", "rules", RULES], None);
    let t = TestDb::demo_rds().await;
    t.applied().await;
    // Clean: nothing fires, not even after hours.
    let clean = prometheus(&t).await;
    let quiet = [
        ("5m", "RlsctlDrift", "[]"),
        ("5h", "RlsctlBreakGlassOpen", "[]"),
        ("5h", "RlsctlAcceptedIsolationFailure", "[]"),
        ("5h", "RlsctlServerKnownBug", "[]"),
        // the run's own timestamp is far after the test's clock
        ("5h", "RlsctlNotRun", "[]"),
    ];
    test_rules(&t, "clean.yml", &rule_test(&clean, &quiet));
    // Break-glass on one table: drift at once, break-glass open after 4 hours.
    t.run(&[
        "rollback",
        "--table",
        "customers",
        "--reason",
        "INC-7",
        "--yes",
    ])
    .await
    .expect(0);
    let broken = prometheus(&t).await;
    let firing = [
        (
            "5m",
            "RlsctlDrift",
            "[{exp_labels: {severity: page}, exp_annotations: {summary: 'Tenant isolation drifted on ', \
             description: 'A check failed or a reviewed exception expired: run `rlsctl monitor` for the findings.'}}]",
        ),
        ("1h", "RlsctlBreakGlassOpen", "[]"),
        (
            "5h",
            "RlsctlBreakGlassOpen",
            "[{exp_labels: {severity: page, table: public.customers, mode: break-glass}, \
             exp_annotations: {summary: 'Break-glass open for over 4 hours on public.customers', \
             description: 'RLS is off on public.customers: close it with `rlsctl rollback --restore`.'}}]",
        ),
    ];
    test_rules(&t, "break-glass.yml", &rule_test(&broken, &firing));
}
