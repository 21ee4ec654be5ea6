//! Many tenant tables on a server left at its default settings
//! (max_locks_per_transaction 64, max_connections 100), applied by the RDS
//! master: the lock budget, batches, interrupted batches and partitions.

use crate::support::*;

/// Creates `n` tenant tables `t_0001`… (a primary key, the tenant column with
/// an index, two rows) as the master, and returns their names.
async fn tenant_tables(t: &TestDb, n: usize) -> Vec<String> {
    let sql = format!(
        "DO $$ BEGIN FOR i IN 1..{n} LOOP
           EXECUTE format('CREATE TABLE t_%s (id bigserial PRIMARY KEY, tenant_id text NOT NULL, payload text)', lpad(i::text, 4, '0'));
           EXECUTE format('CREATE INDEX ON t_%s (tenant_id)', lpad(i::text, 4, '0'));
           EXECUTE format('INSERT INTO t_%s (tenant_id, payload) VALUES (''a'', ''x''), (''b'', ''y'')', lpad(i::text, 4, '0'));
         END LOOP; END $$"
    );
    t.operator().await.simple(&sql).await.unwrap();
    (1..=n).map(|i| format!("t_{i:04}")).collect()
}

/// How many of the `t_` tables are fully installed (RLS, FORCE, both
/// policies, the app's grants) and how many untouched (none of it).
async fn installed_and_untouched(t: &TestDb) -> (i64, i64) {
    let su = t.superuser().await;
    let row = su
        .query_one(
            "WITH s AS (
               SELECT c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
                      (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                         AND p.polname IN ('tenant_isolation', 'rlsctl_break_glass')) AS policies,
                      EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'app_user'
                                AND has_table_privilege(r.oid, c.oid, 'SELECT')) AS granted
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relname LIKE 't\\_%' AND c.relkind IN ('r', 'p'))
             SELECT count(*) FILTER (WHERE rls AND force AND policies = 2 AND granted),
                    count(*) FILTER (WHERE NOT rls AND NOT force AND policies = 0 AND NOT granted)
             FROM s",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The status of pre-flight check `id` in apply's JSON.
fn preflight_status(doc: &serde_json::Value, id: &str) -> String {
    crate::verify::statuses(&doc["preflight"], id).join(",")
}

fn tables_env(names: &[String]) -> String {
    names.join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tables_apply_on_a_default_server() {
    let t = TestDb::empty_rds().await;
    let names = tenant_tables(&t, 2000).await;
    let tables = tables_env(&names);
    let env = [("RLSCTL_TENANT_TABLES", tables.as_str())];
    let su = t.superuser().await;
    let settings = su
        .query_one(
            "SELECT current_setting('max_locks_per_transaction'), current_setting('max_connections')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(settings.get::<_, String>(0), "64", "the server's default");
    let args = [
        "apply",
        "--app-password-from",
        "env:APP_PW",
        "--format",
        "json",
    ];
    let run = t.run_env(&args, &env).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(doc["batching"]["tables"], 2000, "{}", doc["batching"]);
    assert_eq!(preflight_status(&doc, "PRE009"), "pass");
    assert_eq!(installed_and_untouched(&t).await, (2000, 0));
    // Again: nothing to do, no history.
    let run = t.run_env(&args, &env).await;
    run.expect(0);
    assert_eq!(run.json()["summary"]["changes"], 0);
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.bundle_history").await,
        1
    );
    // monitor and verify's probes fit the default lock table too.
    let mut as_app: Vec<(&str, &str)> = AS_APP.to_vec();
    as_app.extend(env);
    t.run_env(&["monitor"], &as_app).await.expect(0);
    let run = t
        .run_env(&["verify", "--tenant", "a", "--tenant", "b"], &as_app)
        .await;
    run.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_lock_table_splits_apply_into_batches() {
    let t = TestDb::empty_rds().await;
    let names = tenant_tables(&t, 200).await;
    let tables = tables_env(&names);
    let env = [("RLSCTL_TENANT_TABLES", tables.as_str())];
    // Another session holds 6,100 of the 6,400 slots: apply may take 150.
    let holder = t.superuser().await;
    holder
        .simple("SELECT count(pg_advisory_lock(i)) FROM generate_series(1, 6100) i")
        .await
        .unwrap();
    let args = [
        "apply",
        "--app-password-from",
        "env:APP_PW",
        "--format",
        "json",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let run = t.run_env(&dry, &env).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(preflight_status(&doc, "PRE009"), "warn", "{}", run.stdout);
    let batching = &doc["batching"];
    assert!(batching["batches"].as_u64().unwrap() >= 2, "{batching}");
    assert!(
        batching["reason"]
            .as_str()
            .unwrap()
            .contains("raise max_locks_per_transaction to 128"),
        "{batching}"
    );
    assert_eq!(installed_and_untouched(&t).await, (0, 200));
    let run = t.run_env(&args, &env).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(
        doc["summary"]["transactions"], doc["batching"]["batches"],
        "{}",
        run.stdout
    );
    assert_eq!(installed_and_untouched(&t).await, (200, 0));
    let su = t.superuser().await;
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.tenant_tables").await,
        200
    );
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.bundle_history").await,
        doc["summary"]["transactions"].as_i64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_batch_leaves_whole_tables_and_a_rerun_finishes() {
    let t = TestDb::empty_rds().await;
    let names = tenant_tables(&t, 200).await;
    let tables = tables_env(&names);
    // A session reads t_0120 (batch 3 of 4) and keeps its lock.
    let blocker = t.superuser().await;
    let blocker_transaction = blocker.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    blocker
        .simple("LOCK TABLE t_0120 IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
    command
        .args([
            "apply",
            "--app-password-from",
            "env:APP_PW",
            "--batch-size",
            "50",
            "--lock-timeout",
            "60s",
        ])
        .env_clear()
        .envs(&t.env)
        .env("RLSCTL_TENANT_TABLES", &tables)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let su = t.superuser().await;
    wait_for_a_lock_wait(&su).await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(exit_code(&mut child).await, Some(130));
    // Two batches committed, the third rolled back: every table whole.
    assert_eq!(installed_and_untouched(&t).await, (100, 100));
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.tenant_tables").await,
        100
    );
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.bundle_history").await,
        2
    );
    blocker_transaction.rollback().await.unwrap();
    // The next run goes on with the other 100 tables.
    let env = [("RLSCTL_TENANT_TABLES", tables.as_str())];
    let args = [
        "apply",
        "--app-password-from",
        "env:APP_PW",
        "--batch-size",
        "50",
        "--format",
        "json",
    ];
    let run = t.run_env(&args, &env).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(doc["batching"]["tables"], 100, "{}", doc["batching"]);
    assert_eq!(doc["summary"]["transactions"], 2);
    assert_eq!(installed_and_untouched(&t).await, (200, 0));
    let run = t.run_env(&args, &env).await;
    run.expect(0);
    assert_eq!(run.json()["summary"]["changes"], 0);
    let mut as_app: Vec<(&str, &str)> = AS_APP.to_vec();
    as_app.extend(env);
    t.run_env(&["monitor"], &as_app).await.expect(0);
}

/// The `events` relations (parent and partitions) fully installed, and those untouched.
async fn events_installed_and_untouched(t: &TestDb) -> (i64, i64) {
    let su = t.superuser().await;
    let row = su
        .query_one(
            "WITH s AS (
               SELECT c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
                      (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                         AND p.polname IN ('tenant_isolation', 'rlsctl_break_glass')) AS policies
               FROM pg_class c WHERE c.relname LIKE 'events%' AND c.relkind IN ('r', 'p'))
             SELECT count(*) FILTER (WHERE rls AND force AND policies = 2),
                    count(*) FILTER (WHERE NOT rls AND NOT force AND policies = 0)
             FROM s",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_table_is_installed_on_every_partition() {
    let t = TestDb::empty_rds().await;
    t.operator()
        .await
        .simple(
            "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, tenant_id text NOT NULL, at date NOT NULL, payload text)
               PARTITION BY RANGE (at);
             CREATE INDEX ON events (tenant_id);
             DO $$ BEGIN FOR i IN 0..199 LOOP
               EXECUTE format('CREATE TABLE events_%s PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                              i, date '2026-01-01' + i, date '2026-01-01' + i + 1);
             END LOOP; END $$;
             INSERT INTO events (tenant_id, at, payload)
               SELECT CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, date '2026-01-01' + g % 200, 'x' FROM generate_series(1, 1000) g;",
        )
        .await
        .unwrap();
    let env = [("RLSCTL_TENANT_TABLES", "events")];
    let mut as_app: Vec<(&str, &str)> = AS_APP.to_vec();
    as_app.extend(env);
    let apply = [
        "apply",
        "--app-password-from",
        "env:APP_PW",
        "--format",
        "json",
    ];
    let run = t.run_env(&apply, &env).await;
    run.expect(0);
    assert_eq!(run.json()["batching"]["tables"], 201);
    assert_eq!(events_installed_and_untouched(&t).await, (201, 0));
    // A partition queried directly isolates like its parent.
    let app = t.app().await;
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    rlsctl::pg::tenant::set_local(&app, "app.tenant_id", "a")
        .await
        .unwrap();
    let foreign = count(&app, "SELECT count(*) FROM events_2 WHERE tenant_id <> 'a'").await;
    assert_eq!(foreign, 0);
    assert!(count(&app, "SELECT count(*) FROM events_2").await > 0);
    app_transaction.rollback().await.unwrap();
    t.run_env(&["verify", "--tenant", "a", "--tenant", "b"], &as_app)
        .await
        .expect(0);
    t.run_env(&["monitor"], &as_app).await.expect(0);
    // The write probe reaches a partitioned parent (rows are routed before
    // policies apply, so it copies a visible row): an open WITH CHECK fails.
    t.sql("ALTER POLICY tenant_isolation ON events WITH CHECK (true)")
        .await;
    let run = t
        .run_env(
            &[
                "verify", "--tenant", "a", "--tenant", "b", "--format", "json",
            ],
            &as_app,
        )
        .await;
    run.expect(1);
    let leaks: Vec<String> = run.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "PRB003" && c["status"] == "fail")
        .map(|c| format!("{}: {}", c["object"], c["detail"]))
        .collect();
    assert!(
        leaks.iter().any(|l| l.starts_with("\"public.events\"")
            && l.contains("inserting a row for the other tenant succeeded")),
        "{leaks:?}"
    );
    t.run_env(&apply, &env).await.expect(0);

    // A partition created after apply: monitor names it and the fix.
    t.operator()
        .await
        .simple(
            "CREATE TABLE events_new PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
             GRANT SELECT ON events_new TO app_user;
             INSERT INTO events (tenant_id, at, payload) VALUES ('b', '2027-06-01', 'later')",
        )
        .await
        .unwrap();
    let run = t.run_env(&["monitor", "--format", "json"], &as_app).await;
    run.expect(1);
    let doc = run.json();
    let drift: Vec<&serde_json::Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "DRF006" && c["status"] != "pass")
        .collect();
    assert_eq!(drift.len(), 1, "{}", run.stdout);
    assert_eq!(drift[0]["object"], "public.events_new");
    assert!(drift[0]["detail"]
        .as_str()
        .unwrap()
        .contains("partition of public.events"));
    assert_eq!(drift[0]["remedy"], "rlsctl apply");
    // apply fixes it.
    let run = t.run_env(&apply, &env).await;
    run.expect(0);
    assert_eq!(run.json()["batching"]["tables"], 1);
    assert_eq!(events_installed_and_untouched(&t).await, (202, 0));
    t.run_env(&["monitor"], &as_app).await.expect(0);
}

/// A plan node that runs once per table and does work that grows with the
/// tables each time: the shape of a quadratic catalog read.
fn per_table_loops(query: &str, node: &serde_json::Value, threshold: f64, found: &mut Vec<String>) {
    let number = |key: &str| node[key].as_f64().unwrap_or(0.0);
    let loops = number("Actual Loops");
    // EXPLAIN reports rows and rows removed as averages per loop.
    let rows_per_loop = number("Actual Rows")
        + number("Rows Removed by Filter")
        + number("Rows Removed by Join Filter")
        + number("Rows Removed by Index Recheck");
    if loops >= threshold && rows_per_loop >= threshold {
        let on = ["Relation Name", "CTE Name", "Index Name", "Function Name"]
            .iter()
            .find_map(|key| node[key].as_str())
            .unwrap_or("");
        let first_line = query
            .lines()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
            .unwrap_or(query);
        found.push(format!(
            "{} {on}: {loops} loops x {rows_per_loop} rows, in: {}",
            node["Node Type"].as_str().unwrap_or("?"),
            first_line.chars().take(160).collect::<String>()
        ));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        per_table_loops(query, child, threshold, found);
    }
}

/// Whether a plan scans a table or catalog anywhere in it.
fn reads_a_relation(node: &serde_json::Value) -> bool {
    node.get("Relation Name").is_some()
        || node["Plans"]
            .as_array()
            .into_iter()
            .flatten()
            .any(reads_a_relation)
}

/// The plans auto_explain wrote to the server log (JSON, one per statement,
/// nested ones too): the lines after "plan:", each indented by a tab.
fn logged_plans(log: &str) -> Vec<serde_json::Value> {
    let mut plans = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.ends_with("plan:") {
            continue;
        }
        let mut text = String::new();
        while let Some(rest) = lines.peek().and_then(|next| next.strip_prefix('\t')) {
            text.push_str(rest);
            text.push('\n');
            lines.next();
        }
        plans.push(
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("a logged plan is not JSON ({e}): {text}")),
        );
    }
    plans
}

/// The catalog reads of apply (dry run), monitor and verify at `n` tables
/// analyzed as autovacuum leaves them: every statement's executed plan, nested
/// ones included, is read from the server's log (auto_explain), and no node may
/// run once per table over a number of rows that grows with the tables (both at
/// least n/4). No timing: the plan's shape is the test. At a few hundred tables
/// the planner once put a whole aggregate on the inner side of a nested loop
/// over the tables (250,000 index scans of pg_depend at 500); above about
/// 1,000 it picks another plan, so only these sizes show it. Also: none of
/// those statements may be JIT-compiled (the server tries on every one).
async fn assert_no_per_table_loops(n: usize) {
    let options = rlsctl::sandbox::Options {
        shape: rlsctl::sandbox::Shape::RdsMaster,
        extra_config: vec![
            "session_preload_libraries = 'auto_explain'".into(),
            "auto_explain.log_analyze = on".into(),
            "auto_explain.log_timing = off".into(),
            "auto_explain.log_format = json".into(),
            "auto_explain.log_nested_statements = on".into(),
            "auto_explain.log_min_duration = 0".into(),
            // Each plan names the settings it ran with that are not the
            // defaults, jit among them; and JIT is tried on every statement
            // that allows it (on a server built with LLVM, such a plan also
            // reports what compiling cost).
            "auto_explain.log_settings = on".into(),
            "jit_above_cost = 0".into(),
        ],
        ..Default::default()
    };
    let t = TestDb::with(options, false).await;
    let names = tenant_tables(&t, n).await;
    let tables = tables_env(&names);
    let env = [("RLSCTL_TENANT_TABLES", tables.as_str())];
    let mut as_app: Vec<(&str, &str)> = AS_APP.to_vec();
    as_app.extend(env);
    let logged_before = t.sandbox.server_log().len();
    let apply = ["apply", "--app-password-from", "env:APP_PW"];
    t.run_env(&apply, &env).await.expect(0);
    // Straight after apply, then with the catalogs analyzed as autovacuum
    // leaves them a minute later: the planner's estimates differ.
    for analyzed in [false, true] {
        if analyzed {
            t.sql("ANALYZE").await;
            let mut dry = apply.to_vec();
            dry.push("--dry-run");
            t.run_env(&dry, &env).await.expect(0);
        }
        t.run_env(&["monitor"], &as_app).await.expect(0);
        t.run_env(&["verify", "--tenant", "a", "--tenant", "b"], &as_app)
            .await
            .expect(0);
    }
    let plans = logged_plans(&t.sandbox.server_log()[logged_before..]);
    assert!(
        plans.len() > 30,
        "auto_explain logged {} plans",
        plans.len()
    );
    let mut found = Vec::new();
    let mut compiled = Vec::new();
    for plan in &plans {
        let query = plan["Query Text"].as_str().unwrap_or("");
        per_table_loops(query, &plan["Plan"], n as f64 / 4.0, &mut found);
        if reads_a_relation(&plan["Plan"])
            && (plan["Settings"]["jit"] != "off" || plan.get("JIT").is_some())
        {
            compiled.push(query.lines().take(3).collect::<Vec<_>>().join(" "));
        }
    }
    found.dedup();
    assert!(
        found.is_empty(),
        "per-table loops over a growing number of rows at {n} tables:\n{}",
        found.join("\n")
    );
    // JIT compiling a catalog read costs more than the read (35 ms of
    // monitor's 142 at 2,000 tables): every statement that reads a table or
    // catalog runs with it off (the few that read neither, such as the
    // connection's first look at the server, cost too little to compile).
    assert!(
        compiled.is_empty(),
        "statements planned with JIT allowed:\n{}",
        compiled.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_catalog_read_loops_over_the_tables_at_250() {
    assert_no_per_table_loops(250).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_catalog_read_loops_over_the_tables_at_500() {
    assert_no_per_table_loops(500).await;
}
