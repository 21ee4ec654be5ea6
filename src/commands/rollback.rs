//! `rlsctl rollback`: break-glass, restore, uninstall.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::Verdict;
use crate::cli::{Format, RollbackArgs};
use crate::pg::rollback::{self, Performed, RollbackAction, RollbackOutcome};

/// Runs `rollback` as a privileged user (default `postgres`).
pub(crate) async fn run(args: RollbackArgs) -> Result<Verdict> {
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
        super::print(&match args.format {
            Format::Text => text(&outcome, &restore),
            Format::Json => serde_json::to_string_pretty(&json!({
                "command": "rollback",
                "database": db.info,
                "result": outcome,
                "restore_command": (outcome.action == Performed::Disable).then_some(restore),
            }))?,
        });
        Ok(if outcome.missing.is_empty() {
            Verdict::Clean
        } else {
            Verdict::Problems
        })
    })
    .await
}

fn verb(action: &RollbackAction) -> &'static str {
    match action {
        RollbackAction::Disable(_) => "disable row level security",
        RollbackAction::Restore => "restore row level security",
        RollbackAction::Uninstall { .. } => "uninstall the bundle",
    }
}

fn ask_database_name(database: &str, action: &RollbackAction) -> Result<()> {
    eprint!(
        "This will {} in database {database}. Type the database name to confirm: ",
        verb(action)
    );
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
