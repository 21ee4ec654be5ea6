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
                CREATE FUNCTION public.customer_total() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public \
                AS 'SELECT count(*) FROM private_customers'"];
    definer_calling_another_function_fails_byp003: "BYP003",
        setup [],
        break ["CREATE FUNCTION public.inner_total() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.customers'; \
                CREATE FUNCTION public.outer_total() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public \
                AS 'SELECT inner_total()'"];
    definer_with_dynamic_sql_fails_byp003: "BYP003",
        setup [],
        break ["CREATE FUNCTION public.anything(t text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public \
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
    t.sql("CREATE FUNCTION public.customer_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public \
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
           SET search_path = public AS 'SELECT count(*) FROM customers WHERE true'")
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
             SET search_path = public AS 'SELECT name FROM tenants WHERE id = $1';
         CREATE SCHEMA archive; CREATE TABLE archive.old_invoices (id int, tenant_id text);",
    )
    .await;
    let (run, doc) = verify(&t, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(doc["summary"]["failed"], 0);
    let (run, _) = monitor_json(&t).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
}
