//! Probes: act as the application would, as the app role, inside
//! transactions that are always rolled back. Tenant ids are bound parameters.

use anyhow::{anyhow, bail, Result};

use super::{Finding, Findings, PRB001, PRB002, PRB003, PRB004, PRF002};
use crate::bundle::policy::normalize;
use crate::config::Target;
use crate::db::{describe, qualified, quote_ident, tenant, Db};
use crate::inspect::{Snapshot, Table};
use crate::sandbox::random_hex;

/// Every probe, for skipping them together.
pub const PROBES: [super::Check; 5] = [PRB001, PRB002, PRB003, PRB004, PRF002];

/// A tenant table the probes can use, with its SQL name and column type.
struct ProbeTable<'a> {
    table: &'a Table,
    sql_name: String,
    column_type: String,
}

/// Runs the probes. `tenants`: the ids given with `--tenant` (may be empty).
pub async fn run(
    db: &Db,
    snap: &Snapshot,
    target: &Target,
    tenants: &[String],
    findings: &mut Findings,
) -> Result<()> {
    if let Some(reason) = snap.session_bypass_reason() {
        findings.skip_all(&PROBES, &format!("{reason}; probes would prove nothing"));
        return Ok(());
    }
    let tables: Vec<ProbeTable> = snap
        .tables
        .iter()
        .filter(|t| t.exists && t.has_column)
        .map(|t| ProbeTable {
            table: t,
            sql_name: qualified(&target.schema, &t.name),
            column_type: t.column_type.clone().unwrap_or_else(|| "text".into()),
        })
        .collect();
    if tables.is_empty() {
        findings.skip_all(
            &PROBES,
            "no configured tenant table exists with the tenant column",
        );
        return Ok(());
    }
    let mut types: Vec<&str> = tables.iter().map(|t| t.column_type.as_str()).collect();
    types.sort();
    types.dedup();
    for id in tenants {
        check_castable(db, id, &types).await?;
    }
    let random_a = random_tenant(db, &types).await?;
    let random_b = random_tenant(db, &types).await?;
    let tenant_a = tenants.first().cloned().unwrap_or(random_a.clone());
    let tenant_b = tenants.get(1).cloned().unwrap_or(if tenants.is_empty() {
        random_b
    } else {
        random_a
    });

    let column = quote_ident(&target.tenant_column);
    let setting = target.tenant_setting.as_str();
    let result = async {
        // PRB001 on a session that never set a tenant, PRB004, then PRB001 again.
        let mut closed = fail_closed(db, &tables, "with no tenant ever set in the session").await?;
        db.begin().await?;
        tenant::set_local(db, setting, &tenant_a).await?;
        db.commit().await?;
        let after = tenant::current(db, setting).await?;
        match after.as_deref() {
            None | Some("") => findings.push(Finding::pass(
                &PRB004,
                None,
                format!(
                    "{setting} is {} after the transaction that set it committed",
                    if after.is_none() { "unset" } else { "empty" }
                ),
            )),
            Some(value) => findings.push(Finding::problem(
                &PRB004,
                setting,
                format!("after COMMIT the session still has {setting} = {}: the next request on this connection would run as that tenant", shorten(value)),
                "set the tenant with set_config(setting, id, true) or SET LOCAL, never a plain SET",
            )),
        }
        closed.extend(fail_closed(db, &tables, "after a transaction set and ended a tenant").await?);
        findings.check(&PRB001, closed, "no row is visible without a tenant, before and after a tenant was set and ended");

        // PRB002 under each tenant.
        let probe_tenants: Vec<String> = if tenants.is_empty() { vec![tenant_a.clone()] } else { tenants.to_vec() };
        let mut problems = Vec::new();
        let mut seen = 0i64;
        for id in &probe_tenants {
            let mut seen_by_tenant = 0i64;
            db.begin().await?;
            tenant::set_local(db, setting, id).await?;
            let sql = tables
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    format!(
                        "SELECT {i}, count(*), count(*) FILTER (WHERE {column} IS DISTINCT FROM $1::text::{}) FROM {}",
                        t.column_type, t.sql_name
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let rows = db.query(&sql, &[id]).await;
            db.rollback().await?;
            for row in rows? {
                let (i, visible, foreign): (i32, i64, i64) = (row.get(0), row.get(1), row.get(2));
                seen += visible;
                seen_by_tenant += visible;
                if foreign > 0 {
                    problems.push(Finding::problem(
                        &PRB002,
                        tables[i as usize].table.display.clone(),
                        format!("under tenant {}, {foreign} of {visible} visible rows belong to other tenants", shorten(id)),
                        "fix the policies (see the RLS checks), then rlsctl apply",
                    ));
                }
            }
            // A tenant that sees nothing proves nothing: a mistyped id, or a
            // policy that hides everything, would pass.
            if !tenants.is_empty() && seen_by_tenant == 0 {
                problems.push(Finding::problem(
                    &PRB002,
                    shorten(id),
                    format!("under tenant {}, no row of any tenant table is visible: isolation is not shown (a mistyped id, or a policy that hides everything)", shorten(id)),
                    "pass tenant ids that own rows: --tenant A --tenant B",
                ));
            }
        }
        if !problems.is_empty() {
            findings.check(&PRB002, problems, "");
        } else if tenants.is_empty() {
            findings.push(Finding::warn(
                &PRB002,
                None,
                "proven only vacuously: no --tenant given, so the probe used a tenant id that exists nowhere",
                "rerun with two real tenants: --tenant A --tenant B",
            ));
        } else {
            findings.push(Finding::pass(&PRB002, None, format!("under {} tenant(s), all {seen} visible rows belonged to the tenant", probe_tenants.len())));
        }

        // PRB003 and PRF002 under tenant A.
        db.begin().await?;
        tenant::set_local(db, setting, &tenant_a).await?;
        let mut writes = Vec::new();
        let mut plans = Vec::new();
        for t in &tables {
            if let Some(problem) = write_isolation(db, t, &column, &tenant_b).await? {
                writes.push(problem);
            }
            let plan = db.query(&format!("EXPLAIN SELECT * FROM {}", t.sql_name), &[]).await?;
            let per_row = plan.iter().map(|r| r.get::<_, String>(0)).find(|line| line.contains("Filter:") && line.contains("current_setting"));
            // The plan shows what happens today; an unwrapped setting becomes a per-row
            // filter as soon as the planner picks a sequential scan.
            let unwrapped = snap.policies_on(&t.table.display).any(|p| {
                p.applies_to_app
                    && p.using.as_deref().is_some_and(|u| u.contains("current_setting") && !normalize(u).contains("=select "))
            });
            let detail = match (per_row, unwrapped) {
                (Some(line), _) => Some(format!("the tenant setting is evaluated per row: {}", line.trim())),
                (None, true) => Some("a policy calls current_setting() outside a scalar subquery: per row whenever the plan is a sequential scan".into()),
                (None, false) => None,
            };
            if let Some(detail) = detail {
                plans.push(Finding::problem(
                    &PRF002,
                    t.table.display.clone(),
                    detail,
                    "wrap the setting in a scalar subquery: (SELECT NULLIF(current_setting(...), '')::type); rlsctl apply installs that form",
                ));
            }
        }
        db.rollback().await?;
        findings.check(&PRB003, writes, format!("writing rows for tenant {} under tenant {} was denied on every table", shorten(&tenant_b), shorten(&tenant_a)));
        findings.check(&PRF002, plans, "the setting is evaluated once per statement (InitPlan or index condition)");
        Ok::<(), tokio_postgres::Error>(())
    }
    .await;
    if let Err(err) = result {
        let _ = db.rollback().await;
        bail!("a probe failed unexpectedly: {}", describe(&err));
    }
    Ok(())
}

/// One statement for all tables: does any row show with no tenant context?
async fn fail_closed(
    db: &Db,
    tables: &[ProbeTable<'_>],
    when: &str,
) -> Result<Vec<Finding>, tokio_postgres::Error> {
    let sql = tables
        .iter()
        .enumerate()
        .map(|(i, t)| format!("SELECT {i}, (SELECT count(*) FROM {})", t.sql_name))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    db.begin().await?;
    let rows = db.query(&sql, &[]).await;
    db.rollback().await?;
    Ok(rows?
        .iter()
        .filter(|r| r.get::<_, i64>(1) > 0)
        .map(|r| {
            let t = &tables[r.get::<_, i32>(0) as usize];
            Finding::problem(
                &PRB001,
                t.table.display.clone(),
                format!("{} row(s) visible {when}", r.get::<_, i64>(1)),
                "the policy must compare with NULLIF(current_setting(setting, true), '') so an absent tenant matches nothing",
            )
        })
        .collect())
}

/// Under the current tenant, tries to move a visible row to `other` and to insert a row for `other`.
async fn write_isolation(
    db: &Db,
    t: &ProbeTable<'_>,
    column: &str,
    other: &str,
) -> Result<Option<Finding>, tokio_postgres::Error> {
    let update = format!(
        "UPDATE {table} SET {column} = $1::text::{ty} WHERE ctid = (SELECT ctid FROM {table} LIMIT 1)",
        table = t.sql_name,
        ty = t.column_type
    );
    let insert = format!(
        "INSERT INTO {} ({column}) VALUES ($1::text::{})",
        t.sql_name, t.column_type
    );
    let mut leaks = Vec::new();
    for (what, sql) in [
        ("updating a visible row to the other tenant", &update),
        ("inserting a row for the other tenant", &insert),
    ] {
        let outcome = tenant::execute_in_savepoint(db, sql, &[&other]).await?;
        match outcome {
            Err(e) if tenant::is_rls_denial(&e) => {}
            Ok(0) if sql == &update => {}
            Ok(n) => leaks.push(format!("{what} succeeded ({n} row(s))")),
            Err(e) => leaks.push(format!(
                "{what} failed with something other than the RLS denial: {}",
                describe(&e)
            )),
        }
    }
    Ok((!leaks.is_empty()).then(|| {
        Finding::problem(
            &PRB003,
            t.table.display.clone(),
            leaks.join("; "),
            "every write policy needs WITH CHECK scoped to the tenant (see RLS004); rlsctl apply installs it",
        )
    }))
}

/// Refuses a tenant id that the tenant column's type cannot hold, with a clear message.
async fn check_castable(db: &Db, id: &str, types: &[&str]) -> Result<()> {
    for ty in types {
        if let Err(e) = db.query(&format!("SELECT $1::text::{ty}"), &[&id]).await {
            return Err(anyhow!(
                "--tenant {} is not a valid {ty} (the tenant column's type): {}",
                shorten(id),
                describe(&e)
            ));
        }
    }
    Ok(())
}

/// A tenant id that exists nowhere and casts to every tenant column type.
async fn random_tenant(db: &Db, types: &[&str]) -> Result<String> {
    let hex = random_hex(16);
    let candidates = [
        format!(
            "{}-{}-4{}-8{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        ),
        format!(
            "-{}",
            u32::from_str_radix(&hex[0..7], 16).unwrap_or(1) + 1_000_000
        ),
        format!("rlsctl-probe-{hex}"),
    ];
    for candidate in candidates {
        if check_castable(db, &candidate, types).await.is_ok() {
            return Ok(candidate);
        }
    }
    bail!("cannot make up a tenant id for the tenant column types {}: pass two real ones with --tenant", types.join(", "))
}

/// A tenant id cut to fit in a message (ids can be megabytes).
pub fn shorten(id: &str) -> String {
    if id.chars().count() <= 40 {
        format!("{id:?}")
    } else {
        format!(
            "{:?}… ({} bytes)",
            id.chars().take(32).collect::<String>(),
            id.len()
        )
    }
}
