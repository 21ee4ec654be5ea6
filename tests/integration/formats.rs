//! SARIF and JUnit from verify and monitor, and reviewed exceptions
//! (`--accept`): accepted, expired and stale, in every format.

use serde_json::Value;

use crate::support::*;

/// The sample, applied, with RLS off on `services` and `vehicles`: RLS001
/// (and the drift checks) fail for both.
async fn two_tables_off() -> TestDb {
    let t = TestDb::demo().await;
    t.applied().await;
    t.operator()
        .await
        .simple(
            "ALTER TABLE public.services DISABLE ROW LEVEL SECURITY; \
             ALTER TABLE public.vehicles DISABLE ROW LEVEL SECURITY",
        )
        .await
        .unwrap();
    t
}

/// The (id, object) of every finding of `doc` with `status`.
fn with_status(doc: &Value, status: &str) -> Vec<(String, String)> {
    checks(doc)
        .into_iter()
        .filter(|c| c.status == status)
        .map(|c| (c.id, c.object))
        .collect()
}

/// An [[accept]] entry for each of `findings` on `object`.
fn entries(findings: &[(String, String)], object: &str, reason: &str, until: &str) -> String {
    findings
        .iter()
        .filter(|(_, o)| o == object)
        .map(|(id, o)| {
            format!(
                "[[accept]]\ncheck = \"{id}\"\nobject = \"{o}\"\nreason = \"{reason}\"\n{until}\n"
            )
        })
        .collect()
}

fn write(t: &TestDb, name: &str, text: &str) -> String {
    let path = t.sandbox.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Validates `sarif` against the SARIF 2.1.0 schema (scripts/ensure-sarif-schema).
fn assert_valid_sarif(sarif: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let schema = std::process::Command::new(format!("{root}/scripts/ensure-sarif-schema"))
        .output()
        .expect("scripts/ensure-sarif-schema runs");
    assert!(
        schema.status.success(),
        "{}",
        String::from_utf8_lossy(&schema.stderr)
    );
    let schema = String::from_utf8(schema.stdout).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), sarif).unwrap();
    let check = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             log = json.load(open(sys.argv[1])); schema = json.load(open(sys.argv[2]))\n\
             jsonschema.validators.validator_for(schema)(schema).validate(log)",
        ])
        .arg(file.path())
        .arg(schema.trim())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "SARIF does not validate: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The day ten days from now (UTC), `YYYY-MM-DD`.
fn in_ten_days() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", "+10 days", "+%F"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_expired_and_stale_exceptions_in_every_format() {
    let t = two_tables_off().await;
    let before = t.run_env(&["monitor", "--format", "json"], &AS_APP).await;
    before.expect(1);
    let failing = with_status(&before.json(), "fail");
    assert!(failing
        .iter()
        .any(|(id, o)| id == "RLS001" && o == "public.services"));
    assert!(failing
        .iter()
        .any(|(id, o)| id == "RLS001" && o == "public.vehicles"));

    // services accepted until a day to come (RLS off is isolation-critical:
    // at most 30 days ahead), vehicles until a day gone by, and an entry that
    // matches nothing.
    let soon = in_ten_days();
    let accept = format!(
        "{}{}[[accept]]\ncheck = \"RLS002\"\nobject = \"public.gone\"\nreason = \"dropped since\"\nuntil = {soon}\n",
        entries(&failing, "public.services", "reviewed: SEC-1", &format!("until = {soon}")),
        entries(&failing, "public.vehicles", "reviewed: SEC-0", "until = 2020-01-31"),
    );
    let accept = write(&t, "accept.toml", &accept);
    let run = t
        .run_env(
            &["monitor", "--accept", &accept, "--format", "json"],
            &AS_APP,
        )
        .await;
    // The expired entry fails the run.
    run.expect(1);
    let doc = run.json();
    let accepted = with_status(&doc, "accepted");
    assert!(!accepted.is_empty());
    assert!(
        accepted.iter().all(|(_, o)| o == "public.services"),
        "{accepted:?}"
    );
    assert_eq!(doc["summary"]["accepted"], accepted.len());
    let services = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "RLS001" && c["object"] == "public.services")
        .unwrap();
    assert_eq!(services["acceptance"]["reason"], "reviewed: SEC-1");
    assert_eq!(services["acceptance"]["until"], soon.as_str());
    let vehicles = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "RLS001" && c["object"] == "public.vehicles")
        .unwrap();
    assert_eq!(vehicles["status"], "fail");
    assert_eq!(vehicles["expired_acceptance"]["until"], "2020-01-31");
    let states: Vec<(&str, &str)> = doc["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["object"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&("public.services", "accepted")),
        "{states:?}"
    );
    assert!(
        states.contains(&("public.vehicles", "expired")),
        "{states:?}"
    );
    assert!(states.contains(&("public.gone", "stale")), "{states:?}");
    assert!(
        run.stderr.contains("matches no problem (stale)"),
        "{}",
        run.stderr
    );

    // Text: the reason beside the finding, the expired and stale entries named.
    let text = t.run_env(&["monitor", "--accept", &accept], &AS_APP).await;
    text.expect(1);
    assert!(
        text.stdout
            .contains(&format!("accepted until {soon}: reviewed: SEC-1")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("expired (it accepts nothing now"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("stale (it matches no problem"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("{} accepted", accepted.len())),
        "{}",
        text.stdout
    );

    // Prometheus: the accepted status and what became of each entry.
    let prom = t
        .run_env(
            &["monitor", "--accept", &accept, "--format", "prometheus"],
            &AS_APP,
        )
        .await;
    prom.expect(1);
    assert!(
        prom.stdout
            .contains("status=\"accepted\",object=\"public.services\"} 1"),
        "{}",
        prom.stdout
    );
    assert!(
        prom.stdout
            .contains("object=\"public.vehicles\",state=\"expired\"} 1"),
        "{}",
        prom.stdout
    );
    assert!(
        prom.stdout
            .contains("object=\"public.gone\",state=\"stale\"} 1"),
        "{}",
        prom.stdout
    );

    // SARIF: accepted results carry a suppression with the reason; valid.
    let sarif = t
        .run_env(
            &["verify", "--accept", &accept, "--format", "sarif"],
            &AS_APP,
        )
        .await;
    sarif.expect(1);
    assert_valid_sarif(&sarif.stdout);
    let log: Value = serde_json::from_str(&sarif.stdout).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    let suppressed = results
        .iter()
        .find(|r| {
            r["ruleId"] == "RLS001"
                && r["locations"][0]["logicalLocations"][0]["name"] == "public.services"
        })
        .unwrap();
    assert_eq!(suppressed["suppressions"][0]["status"], "accepted");
    assert!(suppressed["suppressions"][0]["justification"]
        .as_str()
        .unwrap()
        .contains("reviewed: SEC-1"));
    let open = results
        .iter()
        .find(|r| {
            r["ruleId"] == "RLS001"
                && r["locations"][0]["logicalLocations"][0]["name"] == "public.vehicles"
        })
        .unwrap();
    assert!(open.get("suppressions").is_none());
    assert_eq!(open["level"], "error");
    assert!(open["message"]["text"]
        .as_str()
        .unwrap()
        .contains("expired"));

    // JUnit: parses; vehicles' case fails, services' passes with its reason.
    let junit = t
        .run_env(
            &["monitor", "--accept", &accept, "--format", "junit"],
            &AS_APP,
        )
        .await;
    junit.expect(1);
    let report = quick_junit::Report::deserialize_from_str(&junit.stdout).expect("JUnit parses");
    let cases: Vec<&quick_junit::TestCase> = report
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter())
        .collect();
    let case = |name: &str| {
        cases
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("no case {name}"))
    };
    assert!(matches!(
        case("RLS001 public.vehicles").status,
        quick_junit::TestCaseStatus::NonSuccess { .. }
    ));
    let services = case("RLS001 public.services");
    assert!(matches!(
        services.status,
        quick_junit::TestCaseStatus::Success { .. }
    ));
    assert!(services
        .system_out
        .as_ref()
        .is_some_and(|out| out.as_str().contains("reviewed: SEC-1")));
    assert!(report.failures > 0);

    // Every problem accepted, nothing stale or expired: clean.
    let all = write(
        &t,
        "all.toml",
        &format!(
            "{}{}",
            entries(
                &failing,
                "public.services",
                "reviewed",
                &format!("until = {soon}")
            ),
            entries(
                &failing,
                "public.vehicles",
                "reviewed",
                &format!("until = {soon}")
            )
        ),
    );
    let clean = t
        .run_env(&["monitor", "--accept", &all, "--format", "json"], &AS_APP)
        .await;
    clean.expect(0);
    assert_eq!(clean.json()["summary"]["failed"], 0);
    assert_eq!(clean.json()["summary"]["accepted"], failing.len());

    // A bad file: exit 2 before anything connects, naming line and field.
    let bad = write(
        &t,
        "bad.toml",
        "[[accept]]\ncheck = \"RLS999\"\nreason = \"x\"\n",
    );
    let run = t.run_env(&["monitor", "--accept", &bad], &AS_APP).await;
    run.expect(2);
    assert!(run.stderr.contains("line 2: check"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarif_and_junit_of_a_clean_database_and_of_a_fleet() {
    let t = TestDb::demo().await;
    t.applied().await;
    // A clean database: valid SARIF with no result, every rule with help.
    let run = t
        .run_env(
            &[
                "monitor",
                "--format",
                "sarif",
                "--docs-url",
                "https://docs.example/checks.md",
            ],
            &AS_APP,
        )
        .await;
    run.expect(0);
    assert_valid_sarif(&run.stdout);
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(log["runs"][0]["results"].as_array().unwrap().len(), 0);
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let rls002 = rules.iter().find(|r| r["id"] == "RLS002").unwrap();
    assert_eq!(rls002["helpUri"], "https://docs.example/checks.md#rls002");
    assert_eq!(rls002["defaultConfiguration"]["level"], "error");
    let junit = t.run_env(&["verify", "--format", "junit"], &AS_APP).await;
    junit.expect(0);
    let report = quick_junit::Report::deserialize_from_str(&junit.stdout).expect("JUnit parses");
    assert_eq!(report.failures, 0);
    assert!(report.tests > 10);

    // A fleet: a run (SARIF) and a suite (JUnit) per target, the unreachable
    // one an errored case and an unsuccessful run.
    let targets = t.sandbox.dir().join("targets.toml");
    std::fs::write(
        &targets,
        format!(
            "[defaults]\nhost = \"127.0.0.1\"\nuser = \"app_user\"\npassword-from = \"env:APP_PW\"\ndatabase = \"{DB}\"\n\
             [[target]]\nname = \"up\"\nport = {}\n[[target]]\nname = \"down\"\nport = 1\n",
            t.sandbox.port
        ),
    )
    .unwrap();
    let targets = targets.display().to_string();
    let sarif = t
        .run(&["monitor", "--targets", &targets, "--format", "sarif"])
        .await;
    sarif.expect(2);
    assert_valid_sarif(&sarif.stdout);
    let log: Value = serde_json::from_str(&sarif.stdout).unwrap();
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["automationDetails"]["id"], "rlsctl/monitor/up/");
    assert_eq!(runs[1]["invocations"][0]["executionSuccessful"], false);
    let junit = t
        .run(&["monitor", "--targets", &targets, "--format", "junit"])
        .await;
    junit.expect(2);
    let report = quick_junit::Report::deserialize_from_str(&junit.stdout).expect("JUnit parses");
    assert_eq!(report.test_suites.len(), 2);
    assert_eq!(report.test_suites[1].errors, 1);
}

/// An acceptance cannot silence a leak: accepting the app role's BYPASSRLS
/// (ROLE003, ROLE004) without a near `until` is refused (exit 2), and a file
/// others can write is refused like `.env`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptance_cannot_silence_a_leak() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDb::demo_rds().await;
    t.applied().await;
    t.sql("ALTER ROLE app_user BYPASSRLS").await;
    let forever = "[[accept]]\ncheck = \"ROLE003\"\nobject = \"app_user\"\nreason = \"needed for the migration\"\n\
                   [[accept]]\ncheck = \"ROLE004\"\nobject = \"app_user\"\nreason = \"needed for the migration\"\n";
    let accept = write(&t, "accept.toml", forever);
    for command in ["monitor", "verify"] {
        let mut args = vec![command, "--quiet", "--accept", &accept];
        if command == "verify" {
            args.extend(["--tenant", TENANTS[0], "--tenant", TENANTS[1]]);
        }
        let run = t.run_env(&args, &AS_APP).await;
        run.expect(2);
        assert!(
            run.stderr.contains("a leak or an outage of isolation"),
            "{command}: {}",
            run.stderr
        );
    }
    // A reviewed one, for ten days: accepted, shown, and still reported.
    let soon = in_ten_days();
    let reviewed = forever.replace(
        "reason = \"needed for the migration\"\n",
        &format!("reason = \"needed for the migration\"\nuntil = {soon}\n"),
    );
    let accept = write(&t, "accept.toml", &reviewed);
    let run = t
        .run_env(
            &["monitor", "--accept", &accept, "--format", "prometheus"],
            &AS_APP,
        )
        .await;
    // Accepted isolation failures are their own series, for an alert of
    // their own; each finding still says it is accepted.
    assert!(
        run.stdout
            .contains("rlsctl_accepted{critical=\"true\"} 2\n")
            && run
                .stdout
                .contains("rlsctl_accepted{critical=\"false\"} 0\n"),
        "{}",
        run.stdout
    );
    for id in ["ROLE003", "ROLE004"] {
        assert!(
            run.stdout.contains(&format!(
                "id=\"{id}\",severity=\"error\",status=\"accepted\""
            )),
            "{id}: {}",
            run.stdout
        );
    }
    // Writable by others: refused.
    std::fs::set_permissions(&accept, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = t.run_env(&["monitor", "--accept", &accept], &AS_APP).await;
    run.expect(2);
    assert!(
        run.stderr.contains("writable by group or others"),
        "{}",
        run.stderr
    );
}

/// `/dev/zero` and a FIFO given as a file rlsctl reads whole: exit 2 at
/// once, in bounded memory, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_fifos_as_input_files_are_refused() {
    let t = TestDb::empty().await;
    let fifo = t.sandbox.dir().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.to_str().unwrap().to_string();
    for path in ["/dev/zero", fifo.as_str()] {
        let password = format!("file:{path}");
        for args in [
            ["monitor", "--targets", path].as_slice(),
            &["monitor", "--accept", path],
            &["apply", "--dry-run", "--password-from", &password],
        ] {
            let run = t.run(args).await;
            run.expect(2);
            assert!(
                run.stderr.contains("is not a regular file"),
                "{args:?}: {}",
                run.stderr
            );
        }
    }
}

/// An acceptance stands for the object as reviewed: BYP001 accepted for an
/// aggregate view, with its fingerprint, passes; the same view redefined to
/// return every row fails again, and the entry says it changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptance_stands_for_the_object_as_reviewed() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    t.sql("CREATE VIEW customer_counts AS SELECT tenant_id, count(*) AS n FROM customers GROUP BY 1; \
           GRANT SELECT ON customer_counts TO app_user")
        .await;
    let run = t.run_env(&["monitor", "--format", "json"], &AS_APP).await;
    run.expect(1);
    let doc = run.json();
    let finding = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "BYP001" && c["object"] == "public.customer_counts")
        .expect("BYP001 on the view")
        .clone();
    let fingerprint = finding["fingerprint"].as_str().unwrap().to_string();
    let accept = write(
        &t,
        "accept.toml",
        &format!(
            "[[accept]]\ncheck = \"BYP001\"\nobject = \"public.customer_counts\"\n\
             reason = \"counts only, reviewed SEC-7\"\nfingerprint = \"{fingerprint}\"\n"
        ),
    );
    let run = t
        .run_env(
            &["monitor", "--accept", &accept, "--format", "json"],
            &AS_APP,
        )
        .await;
    run.expect(0);
    // Redefined: every row of every tenant, through the same name.
    t.sql("CREATE OR REPLACE VIEW customer_counts AS SELECT tenant_id, id AS n FROM customers")
        .await;
    let run = t
        .run_env(
            &["monitor", "--accept", &accept, "--format", "json"],
            &AS_APP,
        )
        .await;
    run.expect(1);
    let doc = run.json();
    let states: Vec<&str> = doc["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["changed"], "{}", run.stdout);
    let text = t.run_env(&["monitor", "--accept", &accept], &AS_APP).await;
    assert!(
        text.stdout
            .contains("changed (the object is not the one reviewed"),
        "{}",
        text.stdout
    );
}
