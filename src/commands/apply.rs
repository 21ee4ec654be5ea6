//! `rlsctl apply`: pre-flight, plan, one transaction (or batches of them).

use anyhow::{anyhow, Result};
use serde_json::json;

use super::output::{self, Rendering, Sink, TextOrJson};
use crate::cli::ApplyArgs;
use crate::cutover::apply::{self, ApplyOutcome, Options};
use crate::model::checks;
use crate::model::log::time;
use crate::model::plan::existing::Disposition;
use crate::model::plan::{Action, Enforcement, RoleInputs};
use crate::model::secret::Secret;
use crate::model::shadow::Since;
use crate::model::snapshot::ServerInfo;

/// Runs `apply` as a privileged user (default `postgres`).
pub(crate) async fn run(args: ApplyArgs) -> Result<super::Verdict> {
    // --enforce-clean reads the shadow records first: a log that cannot be
    // read, or does not reach back far enough, stops it before anything changes.
    let enforcement = enforcement(&args).await?;
    let conn = args.db.conn.clone();
    super::with_tunnel(&conn, |conn| async move {
        let (target, db) = super::connect(&conn, &args.db.target, Some("postgres"), true).await?;
        let options = options(&args, enforcement).await?;
        let outcome = apply::apply(&db, &target, &options).await?;
        let result = TextOrJson {
            text: text(&db.info, &outcome, args.dry_run),
            json: json(&db.info, &outcome, args.dry_run),
            clean: !outcome.refused(),
        };
        output::emit(&result, args.format.into(), &Rendering::now(), Sink::STDOUT)
    })
    .await
}

/// Which tables the flags enforce.
async fn enforcement(args: &ApplyArgs) -> Result<Enforcement> {
    if args.shadow {
        return Ok(Enforcement::Shadow);
    }
    if !args.enforce.is_empty() {
        let enforce = super::tenant_tables_only("--enforce", &args.enforce, &args.db.target)?;
        return Ok(Enforcement::Staged {
            enforce,
            shadow: Vec::new(),
        });
    }
    if !args.enforce_clean {
        return Ok(Enforcement::All);
    }
    let since = args
        .logs
        .since
        .ok_or_else(|| anyhow!("--enforce-clean needs --since"))?;
    let now = crate::commands::clock::now_ms();
    let cutoff = time::cutoff(now, since)?;
    let back = humantime::format_duration(since).to_string();
    // The server writes a mark first: the log must hold it, which shows it is
    // the server's current log, read in its layout, up to now. The server
    // writes its log a moment after: a few tries.
    let mark = format!("{now}-{}", std::process::id());
    write_log_mark(args, &mark).await?;
    let (found, label) = super::shadow::read_until_marked(&mark, || {
        super::shadow::read_records(&args.logs, &args.db.conn)
    })
    .await?;
    Ok(Enforcement::Clean(Since::from_log(
        &found,
        &label,
        cutoff,
        &back,
        now,
        Some(&mark),
    )?))
}

/// Has the server write the mark `nonce` to its log, on a connection of its own.
async fn write_log_mark(args: &ApplyArgs, nonce: &str) -> Result<()> {
    let conn = args.db.conn.clone();
    super::with_tunnel(&conn, |conn| async move {
        let (_, db) = super::connect(&conn, &args.db.target, Some("postgres"), true).await?;
        super::shadow::write_log_mark(&db, nonce).await
    })
    .await
}

async fn options(args: &ApplyArgs, enforcement: Enforcement) -> Result<Options> {
    // A dry run shows the password statement redacted without reading the secret.
    let read = |source: &Option<crate::credentials::PasswordSource>, what: &'static str| {
        let source = source.clone();
        let dry_run = args.dry_run;
        let aws = super::aws_settings(&args.db.conn.aws);
        async move {
            match source {
                None => Ok::<_, anyhow::Error>(None),
                Some(_) if dry_run => Ok(Some(Secret::new("dry-run"))),
                Some(source) => Ok(Some(source.read(what, &aws).await?)),
            }
        }
    };
    Ok(Options {
        dry_run: args.dry_run,
        lock_timeout: args.lock_timeout,
        lock_retries: args.lock_retries,
        roles: RoleInputs {
            app_password: read(&args.app_password_from, "password for the app role").await?,
            admin_password: read(
                &args.admin_password_from,
                "password for the break-glass role",
            )
            .await?,
            rotate_passwords: args.rotate_passwords,
            admin_bypassrls: args.admin_bypassrls,
            app_iam: args.app_iam,
        },
        no_app_password: args.no_app_password || args.app_iam,
        batch_size: args.batch_size.map(|n| n as usize),
        enforcement,
        replace_policies: args.replace_policies,
        judge_existing: true,
        accepted: apply::Accepted {
            exceptions: super::read_exceptions(args.accept.as_deref())?,
            today: crate::commands::clock::today(),
        },
        to_shadow_reason: None,
    })
}

fn text(info: &ServerInfo, outcome: &ApplyOutcome, dry_run: bool) -> String {
    let mut out = format!(
        "rlsctl apply: database {} as {} (PostgreSQL {})\n",
        info.name, info.user, info.server_version
    );
    out.push_str(&findings_text(outcome));
    if outcome.refused() {
        out.push_str("Pre-flight refused the apply; nothing was changed.\n");
        return out;
    }
    out.push_str(&plan_table(outcome));
    out.push_str(&reach_text(outcome, dry_run));
    out.push_str(&ending_text(outcome, dry_run));
    out
}

/// The pre-flight's problems, the plan's warnings, and the policies apply
/// found and did not create.
fn findings_text(outcome: &ApplyOutcome) -> String {
    let mut out = String::new();
    for finding in outcome.preflight.problems() {
        let word = match finding.status {
            checks::Status::Fail => "refused",
            _ => "warning",
        };
        out.push_str(&format!("  {word}: {} [{}]\n", finding.detail, finding.id));
        if let Some(remedy) = &finding.remedy {
            out.push_str(&format!("      fix: {remedy}\n"));
        }
    }
    for warning in &outcome.plan.warnings {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    let existing = &outcome.plan.existing_policies;
    if !existing.is_empty() {
        out.push_str("Policies on the tenant tables that apply did not create:\n");
        for p in existing {
            let word = match p.disposition {
                Disposition::Kept => "kept",
                Disposition::Replaced => {
                    "replaced (dropped, its definition recorded for rollback --uninstall)"
                }
                Disposition::Refused => "refused (PRE011)",
            };
            out.push_str(&format!("  {}: {word}; {}\n", p.describe(), p.why));
        }
    }
    out
}

/// Each object of the plan: its action, its mode, its statements; then why
/// each change is made.
fn plan_table(outcome: &ApplyOutcome) -> String {
    let mut out = String::new();
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(["object", "action", "mode", "statements"]);
    for item in &outcome.plan.items {
        let action = match item.action {
            Action::Create => "create",
            Action::Change => "change",
            Action::Unchanged => "unchanged",
        };
        let mode = match item.mode {
            Some(m) if m.before == m.after => m.after.label().to_string(),
            Some(m) => format!("{} → {}", m.before.label(), m.after.label()),
            None => String::new(),
        };
        table.add_row([
            item.object.clone(),
            action.to_string(),
            mode,
            item.statements.len().to_string(),
        ]);
    }
    out.push_str(&format!("{table}\n"));
    for item in &outcome.plan.items {
        if let Some(why) = &item.why {
            out.push_str(&format!("  {}: {why}\n", item.object));
        }
    }
    out
}

/// The SQL of a dry run, or what was applied, or that nothing needed to be.
fn ending_text(outcome: &ApplyOutcome, dry_run: bool) -> String {
    let mut out = String::new();
    let changes = outcome.plan.changes();
    let batching = &outcome.batching;
    let transactions = if batching.split() {
        format!(
            "in {} transactions of up to {} tenant tables each ({})",
            batching.batches, batching.batch_size, batching.reason
        )
    } else {
        "in one transaction".to_string()
    };
    if dry_run {
        if changes > 0 {
            out.push_str(&format!("\nSQL that apply would run, {transactions}:\n"));
            for statement in outcome.plan.statements() {
                // a rendered step may end with its own semicolon
                let shown = statement.shown.trim_end();
                out.push_str(shown.strip_suffix(';').unwrap_or(shown));
                out.push_str(";\n");
            }
        }
        out.push_str(&format!(
            "\nDry run: {changes} object(s) to create or change; nothing was changed.\n"
        ));
    } else if changes == 0 {
        out.push_str("\nThe database is up to date: nothing to change.\n");
    } else {
        out.push_str(&format!(
            "\nApplied: {changes} object(s) created or changed {transactions} (longest {} ms, {} attempt(s)); checksum {}.\n",
            outcome.transaction_ms, outcome.attempts, outcome.checksum
        ));
    }
    out
}

/// Who reaches every row: after a real apply, as recorded (monitor's baseline
/// for DRF004); for a dry run, as it is now.
fn reach_text(outcome: &ApplyOutcome, dry_run: bool) -> String {
    let when = if dry_run || !outcome.applied {
        "now (apply adds the break-glass role and its members through its policy)"
    } else {
        "after this apply, recorded as monitor's baseline: a role that joins them is drift (DRF004)"
    };
    let mut out = format!("\nRoles that reach every row of a tenant table, {when}:\n");
    if outcome.reach.is_empty() {
        out.push_str("  none\n");
    }
    for reacher in &outcome.reach {
        out.push_str(&format!(
            "  {}{}\n",
            reacher.describe(),
            if reacher.login { "" } else { ", cannot log in" }
        ));
    }
    out
}

fn json(info: &ServerInfo, outcome: &ApplyOutcome, dry_run: bool) -> String {
    let unchanged = outcome
        .plan
        .items
        .iter()
        .filter(|i| i.action == Action::Unchanged)
        .count();
    let doc = json!({
        "command": "apply",
        "database": info,
        "dry_run": dry_run,
        "preflight": outcome.preflight,
        "plan": outcome.plan,
        "applied": outcome.applied,
        "checksum": outcome.checksum,
        "batching": outcome.batching,
        "reach": outcome.reach,
        "summary": {
            "changes": outcome.plan.changes(),
            "unchanged": unchanged,
            "refused": outcome.refused(),
            "attempts": outcome.attempts,
            "transaction_ms": outcome.transaction_ms,
            "transactions": outcome.committed,
            "statements": outcome.statements,
        },
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
