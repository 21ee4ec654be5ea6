//! `rlsctl rollback`: break-glass, restore, uninstall.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::output::{self, Rendering, Sink, TextOrJson};
use super::Verdict;
use crate::cli::RollbackArgs;
use crate::cutover::rollback::{self, Performed, RollbackAction, RollbackOutcome};
use crate::model::plan::Enforcement;

/// Runs `rollback` as a privileged user (default `postgres`).
pub(crate) async fn run(mut args: RollbackArgs) -> Result<Verdict> {
    args.table = super::bare_table_names("--table", &args.table, &args.db.target)?;
    if args.to_shadow {
        return to_shadow(args).await;
    }
    let action = if args.restore {
        RollbackAction::Restore
    } else if args.uninstall {
        RollbackAction::Uninstall {
            drop_roles: args.drop_roles,
        }
    } else if args.all || !args.table.is_empty() {
        RollbackAction::Disable(args.table.clone())
    } else {
        bail!("say what to do: --table T (repeatable), --all, --restore or --uninstall");
    };
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(String::from);
    if reason.is_none() && !matches!(action, RollbackAction::Restore) {
        bail!("--reason is required (an incident id, e.g. --reason INC-1234): it goes in the break-glass log");
    }
    // Refuse before connecting when confirmation is impossible, so cron never hangs.
    let confirm = !args.yes && !matches!(action, RollbackAction::Restore);
    if confirm && !std::io::stdin().is_terminal() {
        bail!(
            "refusing to {} without confirmation: there is no TTY to ask on; pass --yes",
            verb(&action)
        );
    }
    let conn = args.db.conn.clone();
    super::with_tunnel(&conn, |conn| async move {
        let (target, db) = super::connect(&conn, &args.db.target, Some("postgres"), true).await?;
        if confirm {
            ask_database_name(&db.info.name, &action)?;
        }
        let outcome = rollback::run(&db, &target, &action, reason.as_deref()).await?;
        let restore = restore_command(&args, &db.info.name, &db.info.user);
        let result = TextOrJson {
            text: text(&outcome, &restore),
            json: serde_json::to_string_pretty(&json!({
                "command": "rollback",
                "database": db.info,
                "result": outcome,
                "restore_command": (outcome.action == Performed::Disable).then_some(&restore),
            }))?,
            clean: outcome.missing.is_empty(),
        };
        output::emit(&result, args.format.into(), &Rendering::now(), Sink::STDOUT)
    })
    .await
}

/// `rollback --table T --to-shadow`: an apply that puts T (and only T) back
/// in shadow mode, with the break-glass log entry in its transaction.
async fn to_shadow(args: RollbackArgs) -> Result<Verdict> {
    let args = RollbackArgs {
        table: super::tenant_tables_only("--table", &args.table, &args.db.target)?,
        ..args
    };
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            anyhow::anyhow!("--reason is required (an incident id, e.g. --reason INC-1234): it goes in the break-glass log")
        })?;
    if !args.yes && !std::io::stdin().is_terminal() {
        bail!("refusing to put tables back in shadow mode without confirmation: there is no TTY to ask on; pass --yes");
    }
    let options = crate::cutover::apply::Options {
        dry_run: false,
        lock_timeout: std::time::Duration::from_secs(5),
        lock_retries: 3,
        roles: Default::default(),
        no_app_password: false,
        batch_size: None,
        enforcement: Enforcement::Staged {
            enforce: Vec::new(),
            shadow: args.table.clone(),
        },
        replace_policies: false,
        judge_existing: false,
        accepted: Default::default(),
        to_shadow_reason: Some(reason.clone()),
    };
    let conn = args.db.conn.clone();
    super::with_tunnel(&conn, |conn| async move {
        let (target, db) = super::connect(&conn, &args.db.target, Some("postgres"), true).await?;
        if !args.yes {
            ask(&db.info.name, "put tables back in shadow mode")?;
        }
        let outcome = crate::cutover::apply::apply(&db, &target, &options).await?;
        let tables: Vec<String> = args.table.iter().map(|t| target.display_table(t)).collect();
        let result = TextOrJson {
            text: to_shadow_text(&outcome, &tables, &reason),
            json: serde_json::to_string_pretty(&json!({
                "command": "rollback",
                "database": db.info,
                "action": "to-shadow",
                "tables": tables,
                "reason": reason,
                "applied": outcome.applied,
                "preflight": outcome.preflight,
                "plan": outcome.plan,
            }))?,
            clean: !outcome.refused(),
        };
        output::emit(&result, args.format.into(), &Rendering::now(), Sink::STDOUT)
    })
    .await
}

fn to_shadow_text(
    outcome: &crate::cutover::apply::ApplyOutcome,
    tables: &[String],
    reason: &str,
) -> String {
    let list = tables.join(", ");
    if outcome.refused() {
        let problems: Vec<String> = outcome
            .preflight
            .problems()
            .map(|f| format!("  refused: {} [{}]", f.detail, f.id))
            .collect();
        return format!(
            "{}\nPre-flight refused; nothing was changed.\n",
            problems.join("\n")
        );
    }
    if !outcome.applied {
        return format!("{list}: in shadow mode already; nothing was changed.\n");
    }
    let bare: Vec<&str> = tables
        .iter()
        .map(|t| t.rsplit('.').next().unwrap_or(t))
        .collect();
    format!(
        "SHADOW MODE on {list}: RLS stays on, but the app sees and writes every tenant's rows there again, and what \
         enforcement would hide is recorded in the server log (rlsctl shadow report).\n\
         Recorded in rlsctl.break_glass_log with reason {reason:?}. `rlsctl monitor` reports it (RLS008) until enforced.\n\
         Enforce again with:\n  rlsctl apply --enforce {}\n",
        bare.join(",")
    )
}

fn verb(action: &RollbackAction) -> &'static str {
    match action {
        RollbackAction::Disable(_) => "disable row level security",
        RollbackAction::Restore => "restore row level security",
        RollbackAction::Uninstall { .. } => "uninstall the bundle",
    }
}

fn ask_database_name(database: &str, action: &RollbackAction) -> Result<()> {
    ask(database, verb(action))
}

/// Asks for the database name before `what`.
fn ask(database: &str, what: &str) -> Result<()> {
    eprint!("This will {what} in database {database}. Type the database name to confirm: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if answer.trim() != database {
        bail!("confirmation did not match {database:?}; nothing was changed");
    }
    Ok(())
}

/// The command that undoes a break-glass, with the same connection.
fn restore_command(args: &RollbackArgs, database: &str, user: &str) -> String {
    let mut command = format!(
        "rlsctl rollback --restore --host {} --port {} -d {database} -U {user}",
        args.db.conn.host, args.db.conn.port
    );
    if args.db.target.schema != "public" {
        command.push_str(&format!(" --schema {}", args.db.target.schema));
    }
    command
}

fn text(outcome: &RollbackOutcome, restore: &str) -> String {
    match outcome.action {
        Performed::Disable => format!(
            "BREAK-GLASS: row level security is OFF on {}: every tenant's rows are visible to the app.\n\
             Recorded in rlsctl.break_glass_log with reason {:?}. `rlsctl monitor` reports it until restored.\n\
             Restore with:\n  {restore}\n",
            outcome.tables.join(", "),
            outcome.reason.clone().unwrap_or_default()
        ),
        Performed::Restore if outcome.tables.is_empty() && outcome.missing.is_empty() => "Nothing to restore: no break-glass is active.\n".into(),
        Performed::Restore if !outcome.missing.is_empty() => format!(
            "Restored: row level security is ENABLED and FORCED again on {}.\n\
             NOT restored: {} no longer exist(s) (dropped since break-glass); the log entries are closed.\n",
            if outcome.tables.is_empty() { "no table".to_string() } else { outcome.tables.join(", ") },
            outcome.missing.join(", ")
        ),
        Performed::Restore => format!(
            "Restored: row level security is ENABLED and FORCED again on {}; {} break-glass entr{} closed.\n",
            outcome.tables.join(", "),
            outcome.closed_entries,
            if outcome.closed_entries == 1 { "y" } else { "ies" }
        ),
        Performed::Uninstall => format!(
            "Uninstalled the bundle from {}: policies, grants and helpers removed, RLS put back as it was before the first apply.\n\
             The break-glass log (rlsctl.break_glass_log) is kept and records this uninstall.\n",
            outcome.tables.join(", ")
        ),
    }
}
