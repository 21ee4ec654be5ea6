//! One module per subcommand.

pub(crate) mod apply;
pub(crate) mod completions;
pub(crate) mod monitor;
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
use crate::cli::{ConnectionArgs, SslMode, SsmArgs, TargetArgs};
use crate::model::config::Target;
use crate::pg::until_interrupted;
use crate::pg::{self, ConnectOptions, Db};
use crate::tunnel::{free_local_port, PortTaken, Tunnel, TunnelSettings};

/// Runs `work` with the connection settings. With `--via-ssm`, an ephemeral
/// tunnel is opened on a free local port first, `work` connects through it
/// (verifying TLS against RDS_ENDPOINT unless told otherwise), and the tunnel is
/// torn down afterwards whatever happened: success, failure, Ctrl-C, or the
/// plugin dying under it.
pub(crate) async fn with_tunnel<T, F, Fut>(conn: &ConnectionArgs, work: F) -> Result<T>
where
    F: FnOnce(ConnectionArgs) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if !conn.via_ssm {
        return until_interrupted(work(conn.clone())).await;
    }
    let settings = tunnel_settings(&conn.ssm);
    // open() handles stop signals itself, ending the session it started. A
    // port taken by someone else between picking and binding: another port.
    let mut attempt = 0;
    let mut tunnel = loop {
        attempt += 1;
        match Tunnel::open(&settings, free_local_port()?).await {
            Err(e) if attempt < 3 && e.downcast_ref::<PortTaken>().is_some() => {
                tracing::warn!("{e:#}; trying another port");
            }
            other => break other?,
        }
    };
    let mut through = conn.clone();
    through.host = "127.0.0.1".into();
    through.port = tunnel.local_port;
    if through.tls_server_name.is_none() {
        through.tls_server_name = conn.ssm.rds_endpoint.clone();
    }
    let result = until_interrupted(async {
        tokio::select! {
            why = tunnel.exited() => Err(anyhow!("the SSM tunnel dropped during the command (nothing was committed unless reported): {why}")),
            result = work(through) => result,
        }
    })
    .await;
    tunnel.close().await;
    result
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
    let target = target_from(target)?;
    let user = conn
        .user
        .as_deref()
        .or(user)
        .unwrap_or(&target.app_role)
        .to_string();
    let options = connect_options(conn, &user, allow_prompt);
    let db = pg::connect(&options).await?;
    tracing::info!(database = %db.info.name, user = %db.info.user, version = %db.info.server_version, "connected");
    Ok((target, db))
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
        .or(args.ssm.rds_endpoint.as_ref());
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

/// Connection options from the shared connection flags, as `user`.
pub(crate) fn connect_options(
    args: &ConnectionArgs,
    user: &str,
    allow_prompt: bool,
) -> ConnectOptions {
    warn_weak_tls(args);
    ConnectOptions {
        password_from: args.password_from.clone().map(|source| {
            std::sync::Arc::new(crate::credentials::Supplier {
                source,
                aws: aws_settings(&args.ssm),
            }) as std::sync::Arc<dyn crate::pg::PasswordSupplier>
        }),
        allow_prompt,
        // A name to verify means verification was wanted: weaker must be asked for.
        sslmode: args.sslmode.unwrap_or(if args.tls_server_name.is_some() {
            SslMode::VerifyFull
        } else {
            SslMode::Prefer
        }),
        allow_weak_auth: args.allow_weak_auth,
        sslrootcert: args.sslrootcert.clone(),
        tls_server_name: args.tls_server_name.clone(),
        connect_timeout: args.connect_timeout,
        ..ConnectOptions::new(&args.host, args.port, &args.dbname, user)
    }
}

/// The AWS profile and region from the flags (else the standard chain).
pub(crate) fn aws_settings(args: &SsmArgs) -> AwsSettings {
    AwsSettings {
        profile: args.profile.clone(),
        region: args.region.clone(),
    }
}

/// The tunnel's settings from the flags.
pub(crate) fn tunnel_settings(args: &SsmArgs) -> TunnelSettings {
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

/// Prints a result document on stdout, with anything that could drive a
/// terminal escaped (see [`crate::logging::printable`]).
pub(crate) fn print(text: &str) {
    use std::io::Write;
    let text = crate::logging::printable(text);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
}
