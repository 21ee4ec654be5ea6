//! `monitor --targets`: a fleet of local databases where one is clean, one has
//! drifted, one cannot be reached and one never answers; `--shard`; a targets
//! file with an error.

use serde_json::Value;

use crate::support::*;
use rlsctl::model::sql::{DEMO_SCHEMA, DEMO_SEED};

/// A second database in `t`'s cluster with the sample schema, applied, then
/// broken: RLS is off on `services` (RLS001, and the drift checks).
async fn drifted_database(t: &TestDb, name: &str) {
    t.sandbox.create_database(name).await.unwrap();
    let operator = rlsctl::pg::connect(&t.sandbox.operator_options(name))
        .await
        .unwrap();
    operator.simple(DEMO_SCHEMA).await.unwrap();
    operator.simple(DEMO_SEED).await.unwrap();
    t.apply_env(&[], &[("PGDATABASE", name)]).await.expect(0);
    operator
        .simple("ALTER TABLE public.services DISABLE ROW LEVEL SECURITY")
        .await
        .unwrap();
}

/// A port that accepts connections and never answers them.
fn silent_port() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Writes `text` as `name` in the sandbox's directory; returns its path.
fn write(t: &TestDb, name: &str, text: &str) -> String {
    let path = t.sandbox.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn fleet_file(t: &TestDb, silent: u16) -> String {
    write(
        t,
        "targets.toml",
        &format!(
            r#"
[defaults]
host = "127.0.0.1"
port = {port}
user = "app_user"
password-from = "env:APP_PW"

[[target]]
name = "clean"
database = "{DB}"

[[target]]
name = "drifted"
database = "drifted"

[[target]]
name = "unreachable"
port = 1

[[target]]
name = "silent"
port = {silent}
"#,
            port = t.sandbox.port
        ),
    )
}

fn status_of<'a>(doc: &'a Value, target: &str) -> &'a Value {
    let found = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .unwrap_or_else(|| panic!("no target {target} in {doc}"));
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_reports_each_target_and_one_that_cannot_be_checked_never_stops_the_others() {
    let t = TestDb::demo().await;
    t.applied().await;
    drifted_database(&t, "drifted").await;
    let silent = silent_port();
    let targets = fleet_file(&t, silent.local_addr().unwrap().port());
    let fleet = ["monitor", "--targets", &targets, "--target-timeout", "3s"];

    // JSON: one document, each target's status, report or error.
    let mut args = fleet.to_vec();
    args.extend(["--format", "json"]);
    let run = t.run(&args).await;
    run.expect(2);
    let doc = run.json();
    let names: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["clean", "drifted", "unreachable", "silent"]);
    assert_eq!(
        status_of(&doc, "clean")["status"],
        "clean",
        "{}",
        run.stdout
    );
    assert_eq!(status_of(&doc, "clean")["report"]["summary"]["failed"], 0);
    let drifted = status_of(&doc, "drifted");
    assert_eq!(drifted["status"], "drift");
    assert!(
        drifted["report"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "RLS001"
                && c["status"] == "fail"
                && c["object"] == "public.services"),
        "{drifted}"
    );
    let unreachable = status_of(&doc, "unreachable");
    assert_eq!(unreachable["status"], "error");
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1"),
        "{unreachable}"
    );
    let silent_result = status_of(&doc, "silent");
    assert_eq!(silent_result["status"], "error");
    assert!(
        silent_result["error"]
            .as_str()
            .unwrap()
            .contains("--target-timeout 3s"),
        "{silent_result}"
    );
    assert_eq!(doc["summary"]["clean"], 1);
    assert_eq!(doc["summary"]["drifted"], 1);
    assert_eq!(doc["summary"]["errors"], 2);
    for target in doc["targets"].as_array().unwrap() {
        assert!(
            target["checked"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{target}"
        );
    }
    assert!(
        run.stderr
            .contains("2 target(s) could not be checked: unreachable, silent"),
        "{}",
        run.stderr
    );
    // No password anywhere.
    assert!(!run.all_output().contains(APP_PASSWORD));

    // Text: a section per target and the summary line.
    let run = t.run(&fleet).await;
    run.expect(2);
    for name in ["clean", "drifted", "unreachable", "silent"] {
        // each section names where the target was checked
        assert!(
            run.stdout
                .contains(&format!("== target {name} (127.0.0.1:")),
            "{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains(
            "fleet: 4 targets: 1 clean, 1 drifted, 2 could not be checked (unreachable, silent)"
        ),
        "{}",
        run.stdout
    );

    // Prometheus: one file, every series labelled with its target, each
    // family once; the unreachable target keeps the last success it had.
    let output = t.sandbox.dir().join("fleet.prom");
    std::fs::write(
        &output,
        "rlsctl_last_success_timestamp_seconds{target=\"unreachable\"} 1700000000.000\n",
    )
    .unwrap();
    let output_arg = output.display().to_string();
    let mut args = fleet.to_vec();
    args.extend(["--format", "prometheus", "--output", &output_arg]);
    t.run(&args).await.expect(2);
    let text = std::fs::read_to_string(&output).unwrap();
    for line in [
        "rlsctl_target_up{target=\"clean\"} 1",
        "rlsctl_target_up{target=\"drifted\"} 1",
        "rlsctl_target_up{target=\"unreachable\"} 0",
        "rlsctl_target_up{target=\"silent\"} 0",
        "rlsctl_drift{target=\"clean\"} 0",
        "rlsctl_drift{target=\"drifted\"} 1",
        "rlsctl_last_success_timestamp_seconds{target=\"unreachable\"} 1700000000.000",
    ] {
        assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
    }
    assert!(text.contains(
        "rlsctl_check_status{target=\"drifted\",id=\"RLS001\",severity=\"error\",status=\"fail\",object=\"public.services\"} 1"
    ), "{text}");
    assert!(
        !text.contains("rlsctl_last_success_timestamp_seconds{target=\"silent\"}"),
        "{text}"
    );
    for family in ["rlsctl_check_status", "rlsctl_target_up", "rlsctl_drift"] {
        assert_eq!(
            text.matches(&format!("# TYPE {family} gauge")).count(),
            1,
            "{text}"
        );
    }
    // Every sample but the run time names its target.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.contains("target=\"") || line.starts_with("rlsctl_last_run_timestamp_seconds "),
            "{line}"
        );
    }

    // Without the broken targets: exit 1 (drift), and 0 with the clean one alone.
    let two = write(
        &t,
        "two.toml",
        &format!(
            "[defaults]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"app_user\"\npassword-from = \"env:APP_PW\"\n\
             [[target]]\nname = \"clean\"\ndatabase = \"{DB}\"\n[[target]]\nname = \"drifted\"\ndatabase = \"drifted\"\n",
            t.sandbox.port
        ),
    );
    t.run(&["monitor", "--targets", &two, "--quiet"])
        .await
        .expect(1);
    let one = write(
        &t,
        "one.toml",
        &format!(
            "[[target]]\nname = \"clean\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"{DB}\"\nuser = \"app_user\"\npassword-from = \"env:APP_PW\"\n",
            t.sandbox.port
        ),
    );
    let run = t.run(&["monitor", "--targets", &one, "--quiet"]).await;
    run.expect(0);
    assert_eq!(run.stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_fleet_into_disjoint_parts_whose_union_is_the_fleet() {
    let t = TestDb::empty().await;
    // Unreachable targets: each fails at once, which is all this needs.
    let mut text = String::new();
    let names: Vec<String> = (0..12).map(|i| format!("db-{i}")).collect();
    for name in &names {
        text.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = 1\n"
        ));
    }
    let targets = write(&t, "targets.toml", &text);
    let mut union = Vec::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let run = t
            .run(&[
                "monitor",
                "--targets",
                &targets,
                "--shard",
                shard,
                "--format",
                "json",
            ])
            .await;
        run.expect(2);
        let part: Vec<String> = run.json()["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["target"].as_str().unwrap().to_string())
            .collect();
        assert!(!part.is_empty(), "shard {shard} is empty");
        assert!(
            part.iter().all(|n| !union.contains(n)),
            "shard {shard} overlaps"
        );
        union.extend(part);
    }
    union.sort();
    let mut all = names.clone();
    all.sort();
    assert_eq!(union, all);
    // The same split every time (a stable hash), and in the environment too.
    let again = t
        .run_env(
            &["monitor", "--targets", &targets, "--format", "json"],
            &[("RLSCTL_SHARD", "0/3")],
        )
        .await;
    let first = t
        .run(&[
            "monitor",
            "--targets",
            &targets,
            "--shard",
            "0/3",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(again.json()["targets"], first.json()["targets"]);
    let bad = t
        .run(&["monitor", "--targets", &targets, "--shard", "3/3"])
        .await;
    bad.expect(2);
    assert!(bad.stderr.contains("below N"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targets_file_with_an_error_stops_before_anything_connects_and_names_its_line() {
    let t = TestDb::empty().await;
    let targets = write(
        &t,
        "targets.toml",
        "[[target]]\nname = \"a\"\nhost = \"127.0.0.1\"\n\n[[target]]\nname = \"b\"\nhost = \"127.0.0.1\"\nport = \"5432\"\n",
    );
    let run = t.run(&["monitor", "--targets", &targets]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("line 8") && run.stderr.contains("port"),
        "{}",
        run.stderr
    );
    // Nothing was tried: no target's section, no connection error.
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains("connect"), "{}", run.stderr);
}

/// One tunnel from the command line reaches one database: with `--targets`
/// every target would be checked there and reported clean as itself. Refused,
/// exit 2, before any tunnel or connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_tunnel_with_targets_is_refused() {
    let t = TestDb::empty().await;
    let targets = t.sandbox.dir().join("targets.toml");
    std::fs::write(
        &targets,
        "[[target]]\nname = \"eu\"\nhost = \"eu.example\"\n[[target]]\nname = \"us\"\nhost = \"us.example\"\n",
    )
    .unwrap();
    let run = t
        .run(&[
            "monitor",
            "--targets",
            targets.to_str().unwrap(),
            "--via-ssh",
            "bastion.example",
        ])
        .await;
    run.expect(2);
    assert!(
        run.stderr.contains("has no tunnel of its own"),
        "{}",
        run.stderr
    );
}
