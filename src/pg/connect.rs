//! Opening a connection: dialling (with the TLS server name kept for a
//! tunnel), TLS, the authentication guard, the password from its source (or
//! PGPASSWORD, ~/.pgpass, a prompt), the session's identity, and siblings
//! that open the same way. The whole of it runs within `connect_timeout`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, NoTls};

use super::auth_guard::{Accepts, AuthGuard, GuardedTls};
use super::dial::dial;
use super::error::{describe, ConnectError};
use super::options::{ConnectOptions, PasswordSupplier, Renewal};
use super::tls::SslMode;
use super::{cancel, cells, pgpass, tls, Db};
use crate::model::secret::Secret;
use crate::model::snapshot::ServerInfo;

/// Opens a connection, resolving the password and TLS as configured.
pub async fn connect(opts: &ConnectOptions) -> Result<Db> {
    let (opts, password) = resolved(opts).await?;
    connect_with(opts, password, Arc::new(AtomicU64::new(0))).await
}

/// Opens a connection and, at the same time, a second one the same way,
/// which the first `Db::sibling` hands over: through a tunnel the second
/// handshake overlaps the first instead of following it (five round trips
/// off a read on two connections). Only when the password is known before
/// connecting and serves both (not a prompt, not an IAM token made per
/// connection); else the second is opened when asked for. A second
/// connection that fails is left out: callers read on one.
pub async fn connect_pair(opts: &ConnectOptions) -> Result<Db> {
    let (opts, password) = resolved(opts).await?;
    let per_connection = opts
        .password_from
        .as_ref()
        .is_some_and(|s| s.renewal() == Renewal::PerConnection);
    let (Some(secret), false) = (password.clone(), per_connection) else {
        return connect_with(opts, password, Arc::new(AtomicU64::new(0))).await;
    };
    let statements = Arc::new(AtomicU64::new(0));
    let spare_options = kept_for_siblings(opts.clone(), Some(secret.clone()));
    let limit = opts.connect_timeout.min(Duration::from_secs(5));
    let spare = async {
        let client = tokio::time::timeout(limit, open(&spare_options, Some(&secret)))
            .await
            .map_err(|_| anyhow!("no second connection within {limit:?}"))??;
        finish(client, spare_options.clone(), statements.clone()).await
    };
    let (db, spare) = tokio::join!(connect_with(opts, password, statements.clone()), spare);
    let db = db?;
    match spare {
        Ok(spare) => {
            if let Ok(mut slot) = db.spare.lock() {
                *slot = Some(Box::new(spare));
            }
        }
        Err(err) => tracing::debug!("no second connection beside the first: {err:#}"),
    }
    Ok(db)
}

/// The options with the user a credential names, and the password from
/// where the options say (given, its source, PGPASSWORD, ~/.pgpass), if any.
async fn resolved(opts: &ConnectOptions) -> Result<(ConnectOptions, Option<Secret>)> {
    let mut opts = opts.clone();
    let password = match (&opts.password, opts.password_from.clone()) {
        (Some(secret), _) => Some(secret.clone()),
        (None, Some(source)) => Some(supplied(&mut opts, source.as_ref()).await?),
        (None, None) => std::env::var("PGPASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .or_else(|| {
                let (host, port) = opts
                    .pgpass_as
                    .clone()
                    .unwrap_or((opts.host.clone(), opts.port));
                pgpass::lookup(&host, port, &opts.dbname, &opts.user)
            })
            .map(Secret::new),
    };
    Ok((opts, password))
}

/// Opens the connection with `password` (asking on the terminal when the
/// server wants one and none was found, reading a rotated secret again once).
async fn connect_with(
    mut opts: ConnectOptions,
    mut password: Option<Secret>,
    statements: Arc<AtomicU64>,
) -> Result<Db> {
    let renewal = opts.password_from.as_ref().map(|s| s.renewal());
    let client = match open(&opts, password.as_ref()).await {
        Err(e) if matches!(e.downcast_ref(), Some(ConnectError::PasswordNeeded { .. })) => {
            if !opts.allow_prompt || !std::io::stdin().is_terminal() {
                return Err(e);
            }
            password = Some(Secret::new(prompt(&format!("password for {}", opts.user))?));
            open(&opts, password.as_ref()).await?
        }
        Err(e)
            if renewal == Some(Renewal::OnRejection)
                && matches!(
                    e.downcast_ref(),
                    Some(ConnectError::PasswordRejected { .. })
                ) =>
        {
            tracing::warn!(
                "{e:#}; reading the secret again, once (rotation may have just replaced it)"
            );
            let source = opts.password_from.clone().ok_or_else(|| anyhow!("{e:#}"))?;
            password = Some(supplied(&mut opts, source.as_ref()).await?);
            open(&opts, password.as_ref()).await?
        }
        other => other?,
    };
    let options = kept_for_siblings(opts, password);
    finish(client, options, statements).await
}

/// What a connection keeps to open its siblings: a credential made per
/// connection (an IAM token) is made again for each, so the source is kept
/// and the token dropped; anything else is kept as read, so a prompt or a
/// secret read is never repeated.
fn kept_for_siblings(opts: ConnectOptions, password: Option<Secret>) -> ConnectOptions {
    let per_connection = opts
        .password_from
        .as_ref()
        .is_some_and(|s| s.renewal() == Renewal::PerConnection);
    ConnectOptions {
        password: if per_connection { None } else { password },
        password_from: if per_connection {
            opts.password_from.clone()
        } else {
            None
        },
        allow_prompt: false,
        ..opts
    }
}

/// Asks `source` for the credential, taking its user name when none was given.
async fn supplied(opts: &mut ConnectOptions, source: &dyn PasswordSupplier) -> Result<Secret> {
    let what = format!("password for {}", opts.user);
    let credential = source.credential(&opts.user, &what).await?;
    if let (true, Some(user)) = (opts.user_from_credential, credential.user) {
        opts.user = user;
    }
    Ok(credential.password)
}

/// Reads who the session is, registers it for Ctrl-C and makes the [`Db`].
async fn finish(client: Client, options: ConnectOptions, statements: Arc<AtomicU64>) -> Result<Db> {
    let who = client.query_typed_one(
        "SELECT pg_catalog.current_database()::pg_catalog.text, session_user::pg_catalog.text, \
         pg_catalog.current_setting('server_version'), \
         pg_catalog.current_setting('server_version_num')::pg_catalog.int4",
        &[],
    );
    let row = tokio::time::timeout(options.connect_timeout, who)
        .await
        .map_err(|_| no_answer(&options))?
        .map_err(|e| anyhow!("{}", describe(&e)))?;
    statements.fetch_add(1, Ordering::Relaxed);
    let row = cells::Cells::new(&row, "session");
    let info = ServerInfo {
        name: row.at(0)?,
        user: row.at(1)?,
        server_version: row.at(2)?,
        server_version_num: row.at(3)?,
    };
    cancel::register(client.cancel_token(), &options);
    Ok(Db {
        client,
        statements,
        options,
        info,
        abandoned: AtomicBool::new(false),
        spare: std::sync::Mutex::new(None),
    })
}

/// Opens a connection with the whole of it — TCP, TLS, authentication and
/// the server's startup — within `connect_timeout`: a listener that accepts
/// and then stays silent ends the attempt, never the run.
async fn open(opts: &ConnectOptions, password: Option<&Secret>) -> Result<Client> {
    tokio::time::timeout(opts.connect_timeout, open_unbounded(opts, password))
        .await
        .unwrap_or_else(|_| Err(no_answer(opts)))
}

/// The error of a connection that did not finish in `connect_timeout`.
fn no_answer(opts: &ConnectOptions) -> anyhow::Error {
    anyhow!(
        "cannot connect to {}: no answer within {:?} (the connection, TLS, authentication and startup must all finish within --connect-timeout)",
        opts.describe(),
        opts.connect_timeout
    )
}

async fn open_unbounded(opts: &ConnectOptions, password: Option<&Secret>) -> Result<Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .port(opts.port)
        .dbname(&opts.dbname)
        .user(&opts.user)
        .application_name("rlsctl")
        .connect_timeout(opts.connect_timeout);
    if let Some(password) = password {
        config.password(password.expose());
    }
    config.ssl_mode(match opts.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let target = opts.describe();
    // Set by the guard when the server asks for a password: with none given,
    // that is why the connection failed.
    let asked = password.is_none().then(|| Arc::new(AtomicBool::new(false)));
    let fail = |e: tokio_postgres::Error| {
        if asked.as_ref().is_some_and(|a| a.load(Ordering::Relaxed)) && e.code().is_none() {
            return anyhow::Error::new(ConnectError::PasswordNeeded {
                target: target.clone(),
            });
        }
        let text = describe(&e);
        let hint = if certificate_refused(&e) {
            match &opts.tls_server_name {
                Some(name) => format!(" (the certificate was checked against {name:?})"),
                None => " (use --tls-server-name NAME to verify against the name the certificate was issued for)".into(),
            }
        } else {
            String::new()
        };
        let message = format!("cannot connect to {target}: {text}{hint}");
        if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD) {
            anyhow::Error::new(ConnectError::PasswordRejected { message })
        } else {
            anyhow!(message)
        }
    };
    let (stream, server_name) = dial(opts)
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    // Every byte the server sends passes the guard, in the clear or under TLS:
    // a request for a cleartext or MD5 password fails before it is answered.
    let ssl_requested = opts.sslmode != SslMode::Disable;
    let (in_the_clear, under_tls) = accepts(opts);
    let stream = AuthGuard::new(stream, ssl_requested, in_the_clear).telling(asked.clone());
    let client = match tls::connector(opts.sslmode, opts.sslrootcert.as_deref())? {
        None => {
            let (client, connection) = config.connect_raw(stream, NoTls).await.map_err(fail)?;
            tokio::spawn(connection);
            client
        }
        Some(mut make) => {
            let tls = MakeTlsConnect::<AuthGuard<tokio::net::TcpStream>>::make_tls_connect(
                &mut make,
                &server_name,
            )
            .map_err(|e| anyhow!("cannot connect to {target}: TLS: {e}"))?;
            let tls = GuardedTls::new(tls, under_tls, asked.clone());
            let (client, connection) = config.connect_raw(stream, tls).await.map_err(fail)?;
            tokio::spawn(connection);
            client
        }
    };
    Ok(client)
}

/// What the guard lets the server ask for, in the clear and under TLS: a
/// cleartext request (an IAM token) is answered under TLS only.
fn accepts(opts: &ConnectOptions) -> (Accepts, Accepts) {
    if opts.allow_weak_auth {
        (Accepts::Anything, Accepts::Anything)
    } else if opts
        .password_from
        .as_ref()
        .is_some_and(|s| s.cleartext_under_tls())
    {
        (Accepts::ScramOnly, Accepts::Cleartext)
    } else {
        (Accepts::ScramOnly, Accepts::ScramOnly)
    }
}

/// The server's certificate was refused (not trusted, or not for the name
/// checked): rustls's error somewhere in the driver's chain.
fn certificate_refused(err: &tokio_postgres::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if matches!(tls, Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        source = e.source();
    }
    false
}

impl Db {
    /// A second connection to the same database as the same user, for reads
    /// that may run beside this one's (its statements count with this one's).
    pub(crate) async fn sibling(&self) -> Result<Db> {
        let spare = self.spare.lock().ok().and_then(|mut slot| slot.take());
        if let Some(spare) = spare {
            return Ok(*spare);
        }
        // A helper, not a necessity: callers fall back to this connection, so a
        // slow second connection is given up on well before connect_timeout.
        let limit = self.options.connect_timeout.min(Duration::from_secs(5));
        let options = &self.options;
        let password = match &options.password_from {
            // Kept only for a credential made per connection (an IAM token).
            Some(source) => {
                let what = format!("password for {}", options.user);
                Some(source.credential(&options.user, &what).await?.password)
            }
            None => options.password.clone(),
        };
        let client = tokio::time::timeout(limit, open(options, password.as_ref()))
            .await
            .map_err(|_| anyhow!("no second connection within {limit:?}"))??;
        finish(client, self.options.clone(), self.statements.clone()).await
    }
}

/// Asks for a password on the terminal; refuses without a TTY rather than hang a cron job.
pub(crate) fn prompt(what: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("{what} is needed but there is no TTY to ask on: set PGPASSWORD, use ~/.pgpass or pass --password-from");
    }
    rpassword::prompt_password(format!("{what}: "))
        .context("reading the password from the terminal")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::{Credential, CredentialFuture};

    /// A supplier that only says how long what it gives stays good.
    #[derive(Debug)]
    struct Renews(Renewal);

    impl PasswordSupplier for Renews {
        fn credential<'a>(&'a self, _user: &'a str, _what: &'a str) -> CredentialFuture<'a> {
            Box::pin(async {
                Ok(Credential {
                    user: None,
                    password: Secret::new("fresh"),
                })
            })
        }

        fn renewal(&self) -> Renewal {
            self.0
        }
    }

    #[test]
    fn siblings_make_a_new_token_and_reuse_anything_else() {
        for (renewal, keeps_source) in [
            (Renewal::PerConnection, true),
            (Renewal::OnRejection, false),
            (Renewal::Once, false),
        ] {
            let opts = ConnectOptions {
                password_from: Some(Arc::new(Renews(renewal))),
                allow_prompt: true,
                ..ConnectOptions::new("db", 5432, "shop", "app_user")
            };
            let kept = kept_for_siblings(opts, Some(Secret::new("read")));
            assert_eq!(kept.password_from.is_some(), keeps_source, "{renewal:?}");
            assert_eq!(kept.password.is_none(), keeps_source, "{renewal:?}");
            assert!(!kept.allow_prompt);
        }
        // A password from the environment or a prompt is kept as read.
        let kept = kept_for_siblings(
            ConnectOptions::new("db", 5432, "shop", "app_user"),
            Some(Secret::new("read")),
        );
        assert_eq!(
            kept.password.map(|p| p.expose().to_string()).as_deref(),
            Some("read")
        );
    }
}
