//! The alerting rules shipped in contrib/prometheus/ against series the real
//! binary wrote: `promtool check rules` on the file, `promtool check metrics`
//! on monitor's output, and `promtool test rules` with monitor's samples as
//! input series, on a clean database (nothing fires) and during a
//! break-glass (drift fires at once, break-glass open after 4 hours).
//! promtool comes from Debian's `prometheus` package (`.ci/run` installs it).

use std::collections::BTreeSet;
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
pub fn rule_test(metrics: &str, alerts: &[(&str, &str, &str)]) -> String {
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

/// `promtool test rules` on `text`, written to `name` in `t`'s directory.
pub fn test_rules(t: &TestDb, name: &str, text: &str) {
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
        ("5h", "RlsctlTenantRlsViolation", "[]"),
        ("5h", "RlsctlTenantErrors", "[]"),
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

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/grafana/rlsctl-dashboard.json"
);

/// Each metric family in `textfile`, with the label names its samples carry.
fn families(textfile: &str, into: &mut std::collections::BTreeMap<String, BTreeSet<String>>) {
    for line in textfile.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|l| l.split(' ').next())
        {
            into.entry(name.to_string()).or_default();
        } else if !line.starts_with('#') && !line.is_empty() {
            let (name, labels) = line
                .split_once('{')
                .unwrap_or((line.split(' ').next().unwrap(), ""));
            let names = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, _)| k.trim().to_string());
            into.entry(name.to_string()).or_default().extend(names);
        }
    }
}

/// The Grafana dashboard's queries name only series the binary writes, with
/// labels it writes (from a single database with --logs, and a fleet with a
/// target down), and each is valid PromQL (`promtool check rules` on them as
/// recording rules).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_queries_the_series_the_binary_writes() {
    let t = TestDb::logging("stderr").await;
    let started = std::time::Instant::now();
    t.applied().await;
    let app = t.app().await;
    let wrong = "BEGIN; SELECT set_config('app.tenant_id', 'edgar-downtown', true); \
                 INSERT INTO customers (tenant_id, full_name) VALUES ('edgar-airport', 'Mallory')";
    assert!(app.simple(wrong).await.is_err());
    let file = t.current_log("stderr").await;
    let since = format!("{}ms", started.elapsed().as_millis());
    let args = [
        "monitor",
        "--logs",
        "--since",
        &since,
        "--log-file",
        file.to_str().unwrap(),
        "--format",
        "prometheus",
    ];
    let single = t.run_env(&args, &AS_APP).await;
    single.expect(1);
    let targets = t.sandbox.dir().join("targets.toml");
    let fleet_file = format!(
        "[defaults]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"app_user\"\npassword-from = \"env:APP_PW\"\n\n\
         [[target]]\nname = \"shop\"\ndatabase = \"{DB}\"\n\n[[target]]\nname = \"down\"\ndatabase = \"{DB}\"\nport = 1\n",
        t.sandbox.port
    );
    std::fs::write(&targets, fleet_file).unwrap();
    let fleet = t
        .run(&[
            "monitor",
            "--targets",
            targets.to_str().unwrap(),
            "--format",
            "prometheus",
        ])
        .await;
    fleet.expect(2);
    let mut written = std::collections::BTreeMap::new();
    families(&single.stdout, &mut written);
    families(&fleet.stdout, &mut written);
    assert!(
        written.contains_key("rlsctl_tenant_errors") && written.contains_key("rlsctl_target_up"),
        "{written:?}"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["expr"].as_str().unwrap().to_string())
        })
        .collect();
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            queries.push(
                query
                    .replace("label_values(", "group by (target) (")
                    .replace(", target)", ")"),
            );
        }
    }
    assert!(queries.len() >= 9, "{queries:?}");
    let metric = regex::Regex::new(r"\b(rlsctl_[a-z_]+)(\{([^}]*)\})?").unwrap();
    let grouping = regex::Regex::new(r"by \(([^)]*)\)").unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        let query = query.replace("$target", ".*");
        let mut labels_here = BTreeSet::new();
        for found in metric.captures_iter(&query) {
            let name = &found[1];
            let labels = written
                .get(name)
                .unwrap_or_else(|| panic!("{query}: the binary writes no {name}"));
            labels_here.extend(labels.iter().cloned());
            for matcher in found
                .get(3)
                .map_or("", |m| m.as_str())
                .split(',')
                .filter(|m| !m.trim().is_empty())
            {
                let label = matcher.split(['=', '!']).next().unwrap().trim();
                assert!(
                    labels.contains(label),
                    "{query}: {name} has no label {label} ({labels:?})"
                );
            }
        }
        for by in grouping.captures_iter(&query) {
            for label in by[1].split(',').map(str::trim) {
                // instance is Prometheus's own (the scrape's), not the binary's
                assert!(
                    label == "instance" || labels_here.contains(label),
                    "{query}: no series has {label}"
                );
            }
        }
        rules.push_str(&format!(
            "      - record: rlsctl:dashboard:{i}\n        expr: '{}'\n",
            query.replace('\'', "''")
        ));
    }
    let file = t.sandbox.dir().join("dashboard-rules.yml");
    std::fs::write(&file, rules).unwrap();
    promtool(&["check", "rules", file.to_str().unwrap()], None);
}
