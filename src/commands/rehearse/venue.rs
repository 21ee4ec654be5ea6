//! Where the rehearsal runs: a throwaway cluster or an existing database,
//! the faults it can inject, and keeping the cluster afterwards.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{anyhow, bail, Context, Result};

use crate::aws::AwsSettings;
use crate::cli::{RehearseArgs, RehearseStep as Step};
use crate::model::config::Target;
use crate::model::secret::Secret;
use crate::model::sql::quote_ident;
use crate::pg::{ConnectOptions, Db, DbResultExt};
use crate::sandbox::{Sandbox, Shape};

use super::{DEMO_DATABASE, DEMO_TENANTS};

/// Where the rehearsal runs.
pub(super) struct Venue {
    pub(super) admin: ConnectOptions,
    pub(super) app: ConnectOptions,
    pub(super) description: String,
    pub(super) tenants: Vec<String>,
    pub(super) with_rollback: bool,
    pub(super) sandbox: Option<Sandbox>,
}

/// A throwaway cluster with the sample schema; the app role's password is generated.
pub(super) fn throwaway(target: &Target, app_password: &Secret, superuser: bool) -> Result<Venue> {
    let shape = if superuser {
        Shape::Superuser
    } else {
        Shape::RdsMaster
    };
    let sandbox = Sandbox::start(&crate::sandbox::Options {
        shape,
        ..Default::default()
    })?;
    let admin = sandbox.operator_options(DEMO_DATABASE);
    let app = sandbox.connect_options(DEMO_DATABASE, &target.app_role, app_password);
    let who = match shape {
        Shape::RdsMaster => format!(
            "applied as the RDS-shaped master {} (NOSUPERUSER CREATEDB CREATEROLE, member of rds_superuser; --superuser for a real superuser)",
            crate::sandbox::OPERATOR
        ),
        Shape::Superuser => format!("applied as the superuser {}", crate::sandbox::OPERATOR),
    };
    let description = format!(
        "throwaway PostgreSQL on 127.0.0.1:{} in {}, {who}",
        sandbox.port,
        sandbox.dir().display()
    );
    Ok(Venue {
        admin,
        app,
        description,
        tenants: DEMO_TENANTS.iter().map(|s| s.to_string()).collect(),
        with_rollback: true,
        sandbox: Some(sandbox),
    })
}

pub(super) async fn existing_database(
    url: &str,
    args: &RehearseArgs,
    target: &Target,
) -> Result<Venue> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| anyhow!("--database-url is not a PostgreSQL URL: {e}"))?;
    if config.get_password().is_some() {
        bail!("--database-url must not contain a password (it would show in the process list): use PGPASSWORD or ~/.pgpass");
    }
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let dbname = config.get_dbname().unwrap_or("edgarautoshop").to_string();
    let user = config.get_user().unwrap_or("postgres").to_string();
    let source = args
        .app_password_from
        .clone()
        .context("--database-url needs --app-password-from: apply sets it on a new app role and verify logs in with it")?;
    let app_password = source
        .read("password for the app role", &AwsSettings::default())
        .await?;
    let base = ConnectOptions {
        allow_prompt: true,
        ..ConnectOptions::new(&host, port, &dbname, &user)
    };
    let app = ConnectOptions {
        user: target.app_role.clone(),
        password: Some(app_password),
        ..base.clone()
    };
    Ok(Venue {
        admin: base,
        app,
        description: format!("existing database {dbname} on {host}:{port} as {user}"),
        tenants: Vec::new(),
        with_rollback: args.with_rollback,
        sandbox: None,
    })
}

/// Breaks the database in a way the step should catch.
pub(super) async fn inject_fault(admin: &Db, target: &Target, step: Step) -> Result<()> {
    let table = crate::model::sql::qualified(
        &target.schema,
        target
            .tables
            .first()
            .map(String::as_str)
            .unwrap_or("customers"),
    );
    let sql = match step {
        Step::DryRun | Step::Shadow | Step::EnforceClean | Step::EnforceLast | Step::Apply => {
            format!("ALTER TABLE {table} RENAME TO {}", quote_ident("rehearsal_fault"))
        }
        // The job can no longer read its table.
        Step::JobFixed => format!("REVOKE SELECT ON {table} FROM {}", quote_ident(&target.app_role)),
        // The isolation policy narrows again behind shadow mode's back.
        Step::ShadowTraffic => format!(
            "ALTER POLICY {} ON {table} USING (false)",
            quote_ident(crate::model::config::POLICY_NAME)
        ),
        // The records are in the log already: nothing in the database can break the report.
        Step::ShadowReport => bail!("--inject-fault has no fault for the shadow report step"),
        Step::Verify | Step::VerifyAgain => format!("CREATE POLICY rehearsal_fault ON {table} FOR SELECT TO PUBLIC USING (true)"),
        Step::Monitor => format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"),
        Step::Rollback => "ALTER TABLE rlsctl.break_glass_log ADD CONSTRAINT rehearsal_fault CHECK (false) NOT VALID".into(),
        Step::MonitorBreakGlass => "UPDATE rlsctl.break_glass_log SET ended_at = now() WHERE ended_at IS NULL".into(),
        Step::Restore => "ALTER TABLE rlsctl.break_glass_log ADD CONSTRAINT rehearsal_fault CHECK (ended_at IS NULL) NOT VALID".into(),
    };
    tracing::warn!(step = ?step, "injecting a fault before this step");
    admin.simple(&sql).await.doing("injecting the fault")?;
    Ok(())
}

/// Leaves the cluster running; returns the shell lines that point rlsctl at it.
pub(super) fn keep(
    sandbox: Sandbox,
    target: &Target,
    app: &Secret,
    admin: &Secret,
) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let pgpass = sandbox.dir().join("pgpass");
    let mut file = std::fs::File::create(&pgpass)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    for (user, password) in [
        (crate::sandbox::OPERATOR, &sandbox.operator_password),
        (target.app_role.as_str(), app),
        (target.admin_role.as_str(), admin),
    ] {
        writeln!(
            file,
            "127.0.0.1:{}:*:{}:{}",
            sandbox.port,
            escape(user),
            escape(password.expose())
        )?;
    }
    let mut out = String::new();
    writeln!(
        out,
        "\n# The cluster is still running. Point rlsctl at it (passwords are in the pgpass file):"
    )?;
    writeln!(
        out,
        "export PGHOST=127.0.0.1 PGPORT={} PGDATABASE=edgarautoshop PGPASSFILE={}",
        sandbox.port,
        pgpass.display()
    )?;
    writeln!(
        out,
        "# e.g.: rlsctl verify --tenant edgar-downtown --tenant edgar-airport"
    )?;
    writeln!(
        out,
        "# Stop and remove it with:\n# {}",
        sandbox.stop_command()
    )?;
    sandbox.keep();
    Ok(out)
}
