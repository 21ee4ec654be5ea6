//! One module per subcommand.

pub(crate) mod apply;
pub(crate) mod clock;
pub(crate) mod completions;
pub(crate) mod monitor;
pub(crate) mod output;
pub(crate) mod rehearse;
pub(crate) mod rollback;
pub(crate) mod shadow;
pub(crate) mod tunnel;
pub(crate) mod verify;

/// How a command ended, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Success; nothing wrong found (exit 0).
    Clean,
    /// The tool ran and found a problem (exit 1).
    Problems,
}

use std::future::Future;

use anyhow::{anyhow, Result};

use crate::aws::AwsSettings;
use crate::cli::{AwsArgs, ConnectionArgs, SslMode, TargetArgs};
use crate::model::config::Target;
use crate::pg::until_interrupted;
use crate::pg::{self, ConnectOptions, Db};
use crate::tunnel::ssh::{SshSettings, SshTunnel};
use crate::tunnel::{free_local_port, Forward, PortTaken, Tunnel, TunnelSettings};

/// Runs `work` with the connection settings. With `--via-ssm` or
/// `--via-ssh`, an ephemeral tunnel is opened on a free local port first,
/// `work` connects through it (verifying TLS against RDS_ENDPOINT unless told
/// otherwise), and the tunnel is torn down afterwards whatever happened:
/// success, failure, Ctrl-C, or the tunnel dying under it.
pub(crate) async fn with_tunnel<T, F, Fut>(conn: &ConnectionArgs, work: F) -> Result<T>
where
    F: FnOnce(ConnectionArgs) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if !conn.via_ssm && conn.via_ssh.is_none() {
        return until_interrupted(work(conn.clone())).await;
    }
    // open() handles stop signals itself, ending what it started. A port
    // taken by someone else between picking and binding: another port.
    let mut attempt = 0;
    let mut tunnel = loop {
        attempt += 1;
        match open_tunnel(conn, free_local_port()?).await {
            Err(e) if attempt < 3 && e.downcast_ref::<PortTaken>().is_some() => {
                tracing::warn!("{e:#}; trying another port");
            }
            other => break other?,
        }
    };
    let mut through = conn.clone();
    through.host = "127.0.0.1".into();
    through.port = tunnel.local_port();
    if through.tls_server_name.is_none() {
        through.tls_server_name = conn.aws.rds_endpoint.clone();
    }
    let kind = tunnel.kind();
    let result = until_interrupted(async {
        tokio::select! {
            why = tunnel.exited() => Err(anyhow!("the {kind} tunnel dropped during the command (nothing was committed unless reported): {why}")),
            result = work(through) => result,
        }
    })
    .await;
    tunnel.close().await;
    result
}

/// Opens the tunnel the flags ask for on `local_port`.
async fn open_tunnel(conn: &ConnectionArgs, local_port: u16) -> Result<Forward> {
    Ok(match &conn.via_ssh {
        Some(bastion) => {
            let settings = SshSettings {
                bastion: bastion.clone(),
                config: conn.ssh_config.clone(),
                rds_endpoint: conn.aws.rds_endpoint.clone(),
                remote_port: conn.aws.remote_port,
                start_timeout: conn.aws.start_timeout,
            };
            Forward::Ssh(SshTunnel::open(&settings, local_port).await?)
        }
        None => Forward::Ssm(Tunnel::open(&tunnel_settings(&conn.aws), local_port).await?),
    })
}

/// Validates the target and opens the connection a command works on, as
/// `user` when given, else the app role (verify and monitor prove isolation as
/// the app connects).
pub(crate) async fn connect(
    conn: &ConnectionArgs,
    target: &TargetArgs,
    user: Option<&str>,
    allow_prompt: bool,
) -> Result<(Target, Db)> {
    connect_as(conn, target, user, allow_prompt, Pair::One).await
}

/// [`connect`], opening `pair` connections at the start.
pub(crate) async fn connect_as(
    conn: &ConnectionArgs,
    target: &TargetArgs,
    user: Option<&str>,
    allow_prompt: bool,
    pair: Pair,
) -> Result<(Target, Db)> {
    let target = target_from(target)?;
    let user = conn
        .user
        .as_deref()
        .or(user)
        .unwrap_or(&target.app_role)
        .to_string();
    let options = connect_options(conn, &user, allow_prompt)?;
    let db = match pair {
        Pair::One => pg::connect(&options).await?,
        Pair::Two => pg::connect_pair(&options).await?,
    };
    tracing::info!(database = %db.info.name, user = %db.info.user, version = %db.info.server_version, "connected");
    Ok((target, db))
}

/// How many connections a command opens at the start.
#[derive(Clone, Copy)]
pub(crate) enum Pair {
    /// One.
    One,
    /// Two at once, for the reads on two connections (verify, monitor):
    /// see [`pg::connect_pair`].
    Two,
}

/// The reviewed exceptions of `--accept`, read before anything connects.
pub(crate) fn read_exceptions(
    accept: Option<&std::path::Path>,
) -> Result<Vec<crate::model::exceptions::Exception>> {
    let Some(path) = accept else {
        return Ok(Vec::new());
    };
    let shown = path.display().to_string();
    // It can silence a finding: private, as .env is.
    let text = crate::input_file::read(path, "--accept", true)?;
    crate::model::exceptions::parse(&text, &shown, &crate::commands::clock::today())
}

/// `report` with the reviewed `exceptions` applied (as of today; `target`:
/// the fleet's name for the database), each stale one warned of: the one
/// place acceptances meet a report, for every command.
pub(crate) fn accepted(
    report: crate::model::report::Report,
    exceptions: &[crate::model::exceptions::Exception],
    target: Option<&str>,
) -> crate::model::report::Report {
    let report = report.with_exceptions(exceptions, &clock::today(), target);
    warn_stale(&report);
    report
}

fn warn_stale(report: &crate::model::report::Report) {
    use crate::model::exceptions::ExceptionState;
    for e in report
        .exceptions
        .iter()
        .filter(|e| e.state == ExceptionState::Stale)
    {
        tracing::warn!(
            check = %e.exception.check,
            object = e.exception.object.as_deref().unwrap_or(""),
            "a reviewed exception matches no problem (stale): remove it"
        );
    }
}

/// Refuses a `flag` value that names no configured tenant table.
pub(crate) fn tenant_tables_only(
    flag: &str,
    names: &[String],
    target: &TargetArgs,
) -> Result<Vec<String>> {
    let names = bare_table_names(flag, names, target)?;
    match names.iter().find(|t| !target.tables.contains(t)) {
        Some(unknown) => Err(anyhow!(
            "{flag} {unknown}: not one of the tenant tables ({}; RLSCTL_TENANT_TABLES)",
            target.tables.join(", ")
        )),
        None => Ok(names),
    }
}

/// Table names as the flags take them: bare, or qualified with the tenant
/// schema as the reports print them (`public.ads`).
pub(crate) fn bare_table_names(
    flag: &str,
    names: &[String],
    target: &TargetArgs,
) -> Result<Vec<String>> {
    names
        .iter()
        .map(|name| {
            if target.tables.contains(name) {
                return Ok(name.clone());
            }
            match name.split_once('.') {
                Some((schema, bare)) if schema == target.schema => Ok(bare.to_string()),
                Some((schema, _)) => Err(anyhow!(
                    "{flag} {name}: the tenant tables are in schema {} (--schema), not {schema}",
                    target.schema
                )),
                None => Ok(name.clone()),
            }
        })
        .collect()
}

/// The validated target from its flags.
pub(crate) fn target_from(args: &TargetArgs) -> Result<Target> {
    Target {
        schema: args.schema.clone(),
        tables: args.tables.clone(),
        tenant_column: args.tenant_column.clone(),
        tenant_setting: args.tenant_setting.clone(),
        app_role: args.app_role.clone(),
        admin_role: args.admin_role.clone(),
    }
    .validate()
}

/// Warns, once per run, when a TLS mode weaker than verify-full was asked for
/// while the server's name is known (a TLS server name, the RDS endpoint of
/// --via-ssm or RDS_ENDPOINT): the name could be checked and will not be.
fn warn_weak_tls(args: &ConnectionArgs) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let name = args
        .tls_server_name
        .as_ref()
        .or(args.aws.rds_endpoint.as_ref());
    let (Some(mode), Some(name)) = (args.sslmode, name) else {
        return;
    };
    if mode == SslMode::VerifyFull || WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let from = if std::env::var_os("PGSSLMODE").is_some() {
        crate::env_file::origin("PGSSLMODE")
    } else {
        "--sslmode".to_string()
    };
    let mode = clap::ValueEnum::to_possible_value(&mode)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    crate::say!(
        "rlsctl: warning: sslmode {mode} (from {from}) while the server's name is known ({name}): \
         its certificate will not be checked against it; leave sslmode unset for verify-full"
    );
}

/// Connection options from the shared connection flags, as `user` (a
/// credential that names a user decides it when none was given).
pub(crate) fn connect_options(
    args: &ConnectionArgs,
    user: &str,
    allow_prompt: bool,
) -> Result<ConnectOptions> {
    warn_weak_tls(args);
    let aws = aws_settings(&args.aws);
    let password_from: Option<std::sync::Arc<dyn crate::pg::PasswordSupplier>> = if args.iam_auth {
        Some(std::sync::Arc::new(iam_token(args, aws)?))
    } else {
        args.password_from.clone().map(|source| {
            std::sync::Arc::new(crate::credentials::Supplier { source, aws })
                as std::sync::Arc<dyn crate::pg::PasswordSupplier>
        })
    };
    // A name to verify means verification was wanted: weaker must be asked
    // for. An IAM token goes in cleartext, so it is sent only under TLS.
    let verify = args.tls_server_name.is_some() || args.iam_auth;
    Ok(ConnectOptions {
        password_from,
        user_from_credential: args.user.is_none(),
        allow_prompt,
        sslmode: args.sslmode.unwrap_or(if verify {
            SslMode::VerifyFull
        } else {
            SslMode::Prefer
        }),
        allow_weak_auth: args.allow_weak_auth,
        sslrootcert: args.sslrootcert.clone(),
        tls_server_name: args.tls_server_name.clone(),
        connect_timeout: args.connect_timeout,
        // through a tunnel, ~/.pgpass names the endpoint, not the local port
        pgpass_as: (args.via_ssm || args.via_ssh.is_some())
            .then(|| {
                args.aws
                    .rds_endpoint
                    .clone()
                    .map(|e| (e, args.aws.remote_port))
            })
            .flatten(),
        ..ConnectOptions::new(&args.host, args.port, &args.dbname, user)
    })
}

/// The IAM token supplier for `--iam-auth`: signed for the RDS endpoint and
/// its port (RDS_ENDPOINT and --remote-port), else for --host and --port when
/// they name the server itself; refused without TLS.
fn iam_token(args: &ConnectionArgs, aws: AwsSettings) -> Result<crate::credentials::IamToken> {
    // The token is a password good for 15 minutes, sent in cleartext under
    // TLS: to a server whose certificate and name were both checked only.
    if let Some(mode) = args.sslmode.filter(|m| *m != SslMode::VerifyFull) {
        let mode = clap::ValueEnum::to_possible_value(&mode)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        anyhow::bail!(
            "--iam-auth sends the token as the password, so it goes only to a server TLS has verified: sslmode {mode} \
             is refused (use verify-full, the default with --iam-auth)"
        );
    }
    let (host, port) = match &args.aws.rds_endpoint {
        Some(endpoint) => (endpoint.clone(), args.aws.remote_port),
        None => (args.host.clone(), args.port),
    };
    let local = host.parse::<std::net::IpAddr>().is_ok() || host == "localhost";
    if local {
        anyhow::bail!(
            "--iam-auth signs the token for the RDS endpoint's name, and {host} is not one: \
             set RDS_ENDPOINT (--rds-endpoint) to the instance's endpoint"
        );
    }
    Ok(crate::credentials::IamToken { aws, host, port })
}

/// The AWS profile and region from the flags (else the standard chain).
pub(crate) fn aws_settings(args: &AwsArgs) -> AwsSettings {
    AwsSettings {
        profile: args.profile.clone(),
        region: args.region.clone(),
        rds_instance: args.db_instance.clone().or_else(|| {
            args.rds_endpoint
                .as_deref()
                .and_then(crate::aws::rds::instance_from_endpoint)
        }),
    }
}

/// The tunnel's settings from the flags.
pub(crate) fn tunnel_settings(args: &AwsArgs) -> TunnelSettings {
    TunnelSettings {
        instance_id: args.instance_id.clone(),
        rds_endpoint: args.rds_endpoint.clone(),
        remote_port: args.remote_port,
        plugin: args.plugin.clone(),
        aws: aws_settings(args),
        start_timeout: args.start_timeout,
        allow_token_in_argv: args.allow_token_in_argv,
    }
}

/// Prints `text` on stdout, with what could drive the terminal escaped.
pub(crate) fn print(text: &str) {
    use std::io::Write;
    let text = crate::logging::printable(text);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
}
