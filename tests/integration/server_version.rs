//! VER001 on a real server: the finding names the version the server runs
//! and what it lacks (the minors these tests run have every known fix, so
//! it passes, saying so, and says when the major is past its end of life);
//! and through the one harness, a database whose extended-statistics views
//! show every role's statistics (CVE-2024-4317's script never run, or the
//! views replaced) warns on a fixed server.

use crate::breaks::{breaks, Break};
use crate::support::*;
use crate::verify::{details, statuses};

/// The views as the server shipped them before CVE-2024-4317's fix: the
/// owner filter taken out.
const UNFIXED_VIEWS: &str = "DO $$ BEGIN \
    EXECUTE 'CREATE OR REPLACE VIEW pg_catalog.pg_stats_ext WITH (security_barrier) AS ' \
        || replace(pg_catalog.pg_get_viewdef('pg_catalog.pg_stats_ext'::regclass), \
                   'pg_has_role(c.relowner, ''USAGE''::text)', 'true'); \
    END $$";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ver001_names_the_servers_version_and_a_database_the_fix_script_missed() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let num = count(
        &t.superuser().await,
        "SELECT current_setting('server_version_num')::bigint",
    )
    .await;
    let (major, minor) = (num / 10_000, num % 100);
    let (run, doc) = crate::verify::verify(&t, &[]).await;
    run.expect(0);
    assert_eq!(
        statuses(&doc, "VER001"),
        ["pass"],
        "{}",
        details(&doc, "VER001")
    );
    let detail = details(&doc, "VER001");
    assert!(
        detail.contains(&format!(
            "PostgreSQL {major}.{minor} has every known row-security fix"
        )),
        "{detail}"
    );
    // 13 and 14 are past their end of life (2025-11-13, 2026-11-12).
    assert_eq!(
        detail.contains("past its end of life"),
        major <= 14,
        "{detail}"
    );
    if major < 14 {
        return; // no pg_stats_ext_exprs, and 13's views never had the fix
    }
    let broken = breaks(Break {
        status: "warn",
        ..Break::of(&[], &[UNFIXED_VIEWS], "VER001")
    })
    .await;
    let detail = details(&broken.doc, "VER001");
    assert!(detail.contains("its script was not run"), "{detail}");
}
