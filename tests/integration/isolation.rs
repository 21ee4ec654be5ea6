//! Ways the app role could still reach other tenants' rows after apply, each
//! shown failing verify and monitor with its check id (monitor runs without
//! probes at night, so the catalog must show it), and the same database without
//! the breakage passing both. Then the correct variants that must not fail.

use crate::support::*;
use crate::verify::{statuses, verify};

/// Through the one harness (crate::breaks): after `setup`, verify and
/// monitor pass; after each statement of `breakage`, both fail with `check`.
async fn hole(setup: &[&str], breakage: &[&str], check: &str) {
    crate::breaks::breaks(crate::breaks::Break::of(setup, breakage, check)).await;
}

macro_rules! holes {
    ($($name:ident: $check:literal, setup $setup:expr, break $breakage:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                hole(&$setup, &$breakage, $check).await;
            }
        )*
    };
}

/// The table owned by a role of its own, which the master (who applies) is a
/// member of, as on RDS where the master must reach every table's owner.
const OWNER: &str = "CREATE ROLE shop_owner NOLOGIN; ALTER TABLE customers OWNER TO shop_owner; GRANT shop_owner TO postgres";
const SCOPED_VARCHAR: &str =
    "tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::varchar)";

holes! {
    // 1. Membership in a table's owner (FORCE does not stop an owner turning RLS off).
    member_of_a_table_owner_fails_role008: "ROLE008",
        setup [OWNER], break ["GRANT shop_owner TO app_user"];
    noinherit_path_to_a_table_owner_fails_role008: "ROLE008",
        setup [OWNER], break ["CREATE ROLE middle NOLOGIN NOINHERIT; GRANT shop_owner TO middle; GRANT middle TO app_user"];
    member_of_the_break_glass_role_fails_role004: "ROLE004",
        setup [], break ["GRANT tenant_admin TO app_user"];
    // 2. CREATEROLE on the app role or a role it reaches.
    createrole_on_the_app_role_fails_role009: "ROLE009",
        setup [], break ["ALTER ROLE app_user CREATEROLE"];
    createrole_on_a_reached_role_fails_role009: "ROLE009",
        setup [], break ["CREATE ROLE grantor NOLOGIN CREATEROLE; GRANT grantor TO app_user"];
    // 3. A tenant before the app sets one: names are case-insensitive; database and server level too.
    upper_case_role_setting_fails_role006: "ROLE006",
        setup [], break ["ALTER ROLE app_user SET \"APP.TENANT_ID\" = 'edgar-downtown'"];
    database_setting_fails_role006: "ROLE006",
        setup [], break ["ALTER DATABASE edgarautoshop SET app.tenant_id = 'edgar-downtown'"];
    // 4. Policies compared by structure, not text.
    policy_on_a_lookalike_column_fails_rls003: "RLS003",
        setup ["ALTER TABLE services ADD COLUMN \"TENANT_ID\" text"],
        break ["DROP POLICY tenant_isolation ON services; CREATE POLICY tenant_isolation ON services FOR ALL TO app_user \
                USING (\"TENANT_ID\" = (SELECT NULLIF(current_setting('app.tenant_id', true), ''))) \
                WITH CHECK (\"TENANT_ID\" = (SELECT NULLIF(current_setting('app.tenant_id', true), '')))"];
    policy_with_a_user_defined_equals_fails_rls003: "RLS003",
        setup [],
        break ["CREATE FUNCTION pg_catalog.rlsctl_test_eq(text, varchar) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'",
               "CREATE OPERATOR pg_catalog.= (LEFTARG = text, RIGHTARG = varchar, FUNCTION = pg_catalog.rlsctl_test_eq)",
               &format!("DROP POLICY tenant_isolation ON services; CREATE POLICY tenant_isolation ON services FOR ALL TO app_user \
                         USING ({SCOPED_VARCHAR}) WITH CHECK ({SCOPED_VARCHAR})")];
    // 5. SECURITY DEFINER functions that cannot be shown free of tenant-table access.
    definer_reading_through_a_view_fails_byp003: "BYP003",
        setup [],
        break ["CREATE VIEW private_customers AS SELECT * FROM customers; REVOKE ALL ON private_customers FROM PUBLIC; \
                CREATE FUNCTION public.customer_total() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp \
                AS 'SELECT count(*) FROM private_customers'"];
    definer_calling_another_function_fails_byp003: "BYP003",
        setup [],
        break ["CREATE FUNCTION public.inner_total() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.customers'; \
                CREATE FUNCTION public.outer_total() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp \
                AS 'SELECT inner_total()'"];
    definer_with_dynamic_sql_fails_byp003: "BYP003",
        setup [],
        break ["CREATE FUNCTION public.anything(t text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp \
                AS $$ DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %I', t) INTO n; RETURN n; END $$"];
    // 6. Column privileges and default privileges.
    column_references_fails_role007: "ROLE007",
        setup [], break ["GRANT REFERENCES (tenant_id, id) ON customers TO app_user"];
    default_truncate_fails_role007: "ROLE007",
        setup [], break ["ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT TRUNCATE ON TABLES TO app_user"];
    // 8. Tables with the tenant column outside the configured schema.
    readable_table_in_another_schema_fails_rls006: "RLS006",
        setup ["CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int PRIMARY KEY, tenant_id text, total int)"],
        break ["GRANT USAGE ON SCHEMA billing TO app_user; GRANT SELECT ON billing.invoices TO app_user"];
    // 9. A rule runs its action with its table's owner's rights; the usual
    //    audit rule (it writes OLD to a log, reading no tenant table) is right.
    a_rule_that_selects_tenant_rows_fails_byp008: "BYP008",
        setup [AUDIT_RULE, AUDIT_TRIGGER],
        break ["CREATE TABLE job_queue (id int); GRANT INSERT ON job_queue TO app_user; \
                CREATE RULE also_customers AS ON INSERT TO job_queue DO ALSO SELECT * FROM customers"];
    // 10. A table that references a tenant table but has no tenant column;
    //     one with RLS of its own (through its parent) is right.
    a_child_table_without_the_tenant_column_fails_rls009: "RLS009",
        setup [COVERED_CHILD],
        break ["CREATE TABLE service_notes (id int PRIMARY KEY, service_id bigint REFERENCES services (id), note text); \
                GRANT SELECT ON service_notes TO app_user"];
    // 11. Roles that read below row security; an exporter in pg_monitor and
    //     common extensions are right.
    server_programs_for_the_app_role_fail_role004: "ROLE004",
        setup [EXPORTER, EXTENSIONS], break ["GRANT pg_execute_server_program TO app_user"];
    server_files_for_the_app_role_fail_role004: "ROLE004",
        setup [EXPORTER], break ["GRANT pg_read_server_files TO app_user"];
    replication_for_the_app_role_fails_role004: "ROLE004",
        setup [EXPORTER], break ["ALTER ROLE app_user REPLICATION"];
    // 12. A SECURITY DEFINER search_path that does not end with pg_temp.
    definer_search_path_without_pg_temp_fails_byp004: "BYP004",
        setup ["CREATE FUNCTION public.shop_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER \
                SET search_path = public, pg_temp AS 'SELECT count(*) FROM tenants'"],
        break ["ALTER FUNCTION public.shop_count() SET search_path = public"];
    // 13. Default privileges that will let PUBLIC read tables created later.
    default_select_for_public_fails_role007: "ROLE007",
        setup [], break ["ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC"];
}

/// The usual audit rule: an update of a customer writes its old row to a log.
const AUDIT_RULE: &str = "CREATE TABLE customer_audit (customer_id bigint, changed_at timestamptz); \
    ALTER TABLE customer_audit OWNER TO postgres; \
    CREATE RULE audit_customers AS ON UPDATE TO customers DO ALSO INSERT INTO customer_audit VALUES (OLD.id, now())";
/// The usual SECURITY DEFINER audit trigger: it writes OLD to a log table
/// the app role cannot write itself, reading no tenant table.
const AUDIT_TRIGGER: &str = "CREATE TABLE customer_changes (customer_id bigint, changed_at timestamptz); \
    ALTER TABLE customer_changes OWNER TO postgres; \
    CREATE FUNCTION public.log_customer_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER \
        SET search_path = pg_catalog, pg_temp \
        AS $$ BEGIN INSERT INTO public.customer_changes VALUES (OLD.id, now()); RETURN NEW; END $$; \
    ALTER FUNCTION public.log_customer_change() OWNER TO postgres; \
    CREATE TRIGGER customer_changes AFTER UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION public.log_customer_change()";
/// A child table without the tenant column, under RLS of its own through
/// its parent's policy.
const COVERED_CHILD: &str = "CREATE TABLE customer_notes (id int PRIMARY KEY, customer_id bigint REFERENCES customers (id), note text); \
    ALTER TABLE customer_notes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY; \
    CREATE POLICY by_customer ON customer_notes USING (EXISTS (SELECT 1 FROM customers c WHERE c.id = customer_id)); \
    GRANT SELECT ON customer_notes TO app_user";
/// A metrics exporter's login role, as the Prometheus exporter documents it.
const EXPORTER: &str = "CREATE ROLE metrics_exporter LOGIN; GRANT pg_monitor TO metrics_exporter";
/// Extensions most databases have.
const EXTENSIONS: &str =
    "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE EXTENSION IF NOT EXISTS pg_trgm; \
    CREATE EXTENSION IF NOT EXISTS citext; CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\"";

/// RLS010: a key between tenant tables without the tenant column (the sample's
/// keys are composite, so it passes first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_between_tenant_tables_without_the_tenant_column_warns_rls010() {
    crate::breaks::breaks(crate::breaks::Break {
        status: "warn",
        ..crate::breaks::Break::of(
            &[],
            &["ALTER TABLE appointments ADD CONSTRAINT appointments_vehicle_only FOREIGN KEY (vehicle_id) REFERENCES vehicles (id)"],
            "RLS010",
        )
    })
    .await;
}

/// ROLE010: default SELECT for the app role on tables created later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_select_for_the_app_role_warns_role010() {
    crate::breaks::breaks(crate::breaks::Break {
        status: "warn",
        ..crate::breaks::Break::of(
            &[],
            &["ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO app_user"],
            "ROLE010",
        )
    })
    .await;
}

/// A login role granted a way below row security after apply is drift
/// (DRF004); the predefined roles themselves, in the set on every server,
/// are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_role_granted_server_files_fails_drf004() {
    crate::breaks::breaks(crate::breaks::Break::of(
        &[EXPORTER],
        &["CREATE ROLE file_reader LOGIN; GRANT pg_read_server_files TO file_reader"],
        "DRF004",
    ))
    .await;
}

/// The rule's leak is real: as the app role, an insert into the queue returns
/// every tenant's customers; and verify and monitor read a database holding
/// rules of every event without an error (exit 2 was "unknown relkind").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_returns_other_tenants_rows_and_rules_never_abort_the_read() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    t.sql("CREATE TABLE job_queue (id int); GRANT INSERT, UPDATE, DELETE ON job_queue TO app_user; \
           CREATE RULE also_customers AS ON INSERT TO job_queue DO ALSO SELECT tenant_id FROM customers; \
           CREATE RULE on_update AS ON UPDATE TO job_queue DO INSTEAD NOTHING; \
           CREATE RULE on_delete AS ON DELETE TO job_queue DO ALSO NOTIFY jobs")
        .await;
    let app = t.app().await;
    let tx = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    app.simple(&format!(
        "SELECT set_config('app.tenant_id', '{}', true)",
        TENANTS[0]
    ))
    .await
    .unwrap();
    // The simple protocol returns the rule's SELECT, as psql shows it.
    let messages = app
        .simple("INSERT INTO job_queue VALUES (1)")
        .await
        .unwrap();
    let tenants: std::collections::BTreeSet<String> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(tenants.len() > 1, "the rule returned only {tenants:?}");
    tx.rollback().await.unwrap();
    for (what, (run, doc)) in [
        ("verify", verify(&t, &[]).await),
        ("monitor", monitor_json(&t).await),
    ] {
        assert_eq!(run.code, 1, "{what}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(statuses(&doc, "BYP008"), ["fail"], "{what}: {}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_level_setting_fails_role006() {
    let t = TestDb::demo().await;
    t.applied().await;
    // postgresql.conf (a parameter group on RDS): every new session starts with it.
    let conf = t.sandbox.dir().join("data/postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\napp.tenant_id = 'edgar-downtown'\n");
    std::fs::write(&conf, text).unwrap();
    t.sql("SELECT pg_reload_conf()").await;
    // The reload is asynchronous: wait until a new session starts with it.
    wait_until(
        "a new session sees the server-level tenant",
        std::time::Duration::from_secs(10),
        || async {
            let app = t.app().await;
            rlsctl::pg::tenant::current(&app, "app.tenant_id")
                .await
                .unwrap()
                .as_deref()
                == Some("edgar-downtown")
        },
    )
    .await;
    for (what, (run, doc)) in [
        ("verify", verify(&t, &[]).await),
        ("monitor", monitor_json(&t).await),
    ] {
        assert_eq!(run.code, 1, "{what}: {}\n{}", run.stdout, run.stderr);
        assert!(
            doc["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == "ROLE006"
                    && c["status"] == "fail"
                    && c["detail"]
                        .as_str()
                        .unwrap()
                        .contains("server or connection")),
            "{what}: {}",
            run.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewed_definer_passes_until_its_body_changes() {
    let t = TestDb::demo().await;
    t.applied().await;
    t.sql("CREATE FUNCTION public.customer_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp \
           AS 'SELECT count(*) FROM customers'")
        .await;
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "BYP003"), ["fail"], "{}", run.stdout);
    let remedy = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "BYP003")
        .unwrap()["remedy"]
        .as_str()
        .unwrap()
        .to_string();
    // The remedy names the marker to record once a reviewer has read the body.
    let su = t.superuser().await;
    let source: String = su
        .query_one(
            "SELECT prosrc FROM pg_proc WHERE proname = 'customer_count'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let marker = rlsctl::model::checks::bypass::reviewed_marker(&source);
    assert!(remedy.contains(&marker), "{remedy}");
    t.sql(&format!(
        "COMMENT ON FUNCTION public.customer_count() IS 'reviewed by alice: counts only. {marker}'"
    ))
    .await;
    let (run, _) = monitor_json(&t).await;
    run.expect(0);
    let (run, _) = verify(&t, &[]).await;
    run.expect(0);
    // A changed body no longer matches the review.
    t.sql("CREATE OR REPLACE FUNCTION public.customer_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER \
           SET search_path = public, pg_temp AS 'SELECT count(*) FROM customers WHERE true'")
        .await;
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert!(
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "BYP003" && c["detail"].as_str().unwrap().contains("changed since")),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_do_not_pass_vacuously_or_on_other_permission_errors() {
    let t = TestDb::demo().await;
    t.applied().await;
    // A mistyped tenant sees nothing: that proves nothing.
    let run = t
        .run_env(
            &[
                "verify",
                "--format",
                "json",
                "--tenant",
                "edgar-downtwon",
                "--tenant",
                TENANTS[1],
            ],
            &AS_APP,
        )
        .await;
    run.expect(1);
    let doc = run.json();
    assert!(
        statuses(&doc, "PRB002").contains(&"fail".to_string()),
        "{}",
        run.stdout
    );
    // An insert refused for a missing sequence grant is not the RLS denial.
    t.sql("REVOKE USAGE ON SEQUENCE customers_id_seq FROM app_user")
        .await;
    let (run, doc) = verify(&t, &[]).await;
    run.expect(1);
    let detail: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "PRB003" && c["status"] == "fail")
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert!(
        detail
            .iter()
            .any(|d| d.contains("other than the RLS denial") && d.contains("sequence")),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_variants_pass_verify_and_monitor() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    if su.info.server_version_num >= 150000 {
        t.sql(
            "CREATE VIEW public.my_customers WITH (security_invoker = true) AS SELECT * FROM customers;
             GRANT SELECT ON public.my_customers TO app_user",
        )
        .await;
    }
    t.sql(
        "CREATE VIEW public.app_customers AS SELECT * FROM customers;
         ALTER VIEW public.app_customers OWNER TO app_user;
         CREATE POLICY named_only ON customers AS RESTRICTIVE FOR SELECT TO app_user USING (full_name IS NOT NULL);
         CREATE FUNCTION public.shop_name(text) RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
             SET search_path = public, pg_temp AS 'SELECT name FROM tenants WHERE id = $1';
         CREATE SCHEMA archive; CREATE TABLE archive.old_invoices (id int, tenant_id text);",
    )
    .await;
    let (run, doc) = verify(&t, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(doc["summary"]["failed"], 0);
    let (run, _) = monitor_json(&t).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
}

/// Every kind of catalog object PostgreSQL 13-18 can hold around tenant
/// tables is read without an error: verify and monitor report (exit 0 or 1),
/// never exit 2. Foreign tables, partitions, materialized views, rules on
/// views, typed and unlogged tables, extended statistics, publications,
/// event triggers, domains, sequences, inheritance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_catalog_object_is_read_without_an_error() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    t.sql(
        "CREATE EXTENSION postgres_fdw;
         CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'edgarautoshop');
         CREATE FOREIGN TABLE remote_customers (id bigint, tenant_id text) SERVER loop OPTIONS (table_name 'customers');
         CREATE TABLE events (id int, tenant_id text, at date) PARTITION BY RANGE (at);
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE MATERIALIZED VIEW customer_totals AS SELECT tenant_id, count(*) FROM customers GROUP BY 1;
         CREATE VIEW customer_names WITH (security_barrier) AS SELECT id, tenant_id, full_name FROM customers;
         CREATE RULE customer_names_insert AS ON INSERT TO customer_names DO INSTEAD
             INSERT INTO customers (tenant_id, full_name) VALUES (NEW.tenant_id, NEW.full_name);
         CREATE TYPE pair AS (a int, b text);
         CREATE TABLE typed OF pair;
         CREATE UNLOGGED TABLE scratch (id int, tenant_id text);
         CREATE SEQUENCE ticket_numbers;
         CREATE STATISTICS customer_stats ON tenant_id, full_name FROM customers;
         CREATE PUBLICATION customer_feed FOR TABLE customers;
         CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
         CREATE EVENT TRIGGER on_ddl ON ddl_command_end EXECUTE FUNCTION public.on_ddl();
         CREATE DOMAIN shop_name AS text CHECK (VALUE <> '');
         CREATE TABLE legacy_parent (id int, tenant_id text); CREATE TABLE legacy_child () INHERITS (legacy_parent);",
    )
    .await;
    for (what, (run, _)) in [
        ("verify", verify(&t, &[]).await),
        ("monitor", crate::support::monitor_json(&t).await),
    ] {
        assert!(
            run.code == 0 || run.code == 1,
            "{what} exit {}: {}\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
    }
}
