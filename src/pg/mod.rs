//! Connections to PostgreSQL: settings, password sources, TLS, a statement
//! counter, identifier quoting and the tenant-context helpers.

pub(crate) mod auth_guard;
pub(crate) mod cells;
pub mod per_table;
pub(crate) mod pgpass;
pub mod tenant;
pub(crate) mod tls;
pub(crate) mod transaction;

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row, SimpleQueryMessage};

use crate::model::secret::Secret;
use crate::model::snapshot::ServerInfo;
use auth_guard::{Accepts, AuthGuard, GuardedTls};
use tls::SslMode;
pub use transaction::{Begin, Transaction};

/// What a [`PasswordSupplier`] gives for one connection.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The user name, when the source names one (a Secrets Manager JSON
    /// secret's `username`): used when none was given (`-U`, `PGUSER`).
    pub user: Option<String>,
    /// The password (or IAM auth token).
    pub password: Secret,
}

/// What [`PasswordSupplier::credential`] returns: the credential, once read.
pub type CredentialFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Credential>> + Send + 'a>>;

/// How long a supplied credential stays good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Read once per run (a prompt, the environment, a file, Parameter Store).
    Once,
    /// Read once, and once more when the server rejects it: a Secrets Manager
    /// secret that rotation may have just replaced.
    OnRejection,
    /// Made anew for every connection: an IAM auth token (valid 15 minutes).
    PerConnection,
}

/// Gives the password when the server asks for one: read only then, so a
/// prompt or an AWS call happens only when it is needed. The sources
/// themselves (prompt, environment, file, AWS) live above this layer.
pub trait PasswordSupplier: std::fmt::Debug + Send + Sync {
    /// The credential for connecting as `user`; `what` names it in prompts
    /// and errors ("password for app_user").
    fn credential<'a>(&'a self, user: &'a str, what: &'a str) -> CredentialFuture<'a>;

    /// How long what it gives stays good.
    fn renewal(&self) -> Renewal {
        Renewal::Once
    }

    /// The server will ask for this credential in cleartext, and may, under
    /// TLS only (RDS IAM authentication does).
    fn cleartext_under_tls(&self) -> bool {
        false
    }
}

/// Everything needed to open one connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or address dialled.
    pub host: String,
    /// Port dialled.
    pub port: u16,
    /// Database name.
    pub dbname: String,
    /// User name.
    pub user: String,
    /// No user name was given: a credential that names one decides it.
    pub user_from_credential: bool,
    /// Explicit password source; otherwise PGPASSWORD, ~/.pgpass, a prompt.
    pub password_from: Option<Arc<dyn PasswordSupplier>>,
    /// A password already read (takes precedence over everything).
    pub password: Option<Secret>,
    /// May ask on the terminal when the server wants a password and nothing else gave one.
    pub allow_prompt: bool,
    /// TLS mode.
    pub sslmode: SslMode,
    /// CA file.
    pub sslrootcert: Option<PathBuf>,
    /// Name to verify the certificate against while dialling `host`.
    pub tls_server_name: Option<String>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Answer a server that asks for a cleartext or MD5 password (refused otherwise).
    pub allow_weak_auth: bool,
    /// The server's own host and port when `host:port` is a tunnel's local
    /// end: what `~/.pgpass` entries name (the local port is new each run).
    pub pgpass_as: Option<(String, u16)>,
}

impl ConnectOptions {
    /// Options for `user` on `host:port/dbname` with the defaults: no password
    /// yet (PGPASSWORD, ~/.pgpass), no prompt, `prefer` TLS, a 10 s timeout.
    pub(crate) fn new(host: &str, port: u16, dbname: &str, user: &str) -> Self {
        Self {
            host: host.to_string(),
            port,
            dbname: dbname.to_string(),
            user: user.to_string(),
            user_from_credential: false,
            password_from: None,
            password: None,
            allow_prompt: false,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            tls_server_name: None,
            connect_timeout: Duration::from_secs(10),
            allow_weak_auth: false,
            pgpass_as: None,
        }
    }

    /// `user@host:port/dbname`, for messages (never contains the password).
    pub(crate) fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }
}

/// A value bound to a statement parameter, with the PostgreSQL type it is
/// sent as (statements are unnamed and typed by the client; see [`Db::query`]).
pub trait Param: ToSql + Sync {
    /// The parameter's type.
    fn sql_type(&self) -> Type;
    /// The value as the driver binds it.
    fn as_sql(&self) -> &(dyn ToSql + Sync);
}

macro_rules! params {
    ($($rust:ty => $pg:expr),* $(,)?) => {$(
        impl Param for $rust {
            fn sql_type(&self) -> Type {
                $pg
            }
            fn as_sql(&self) -> &(dyn ToSql + Sync) {
                self
            }
        }
    )*};
}

params! {
    &str => Type::TEXT,
    String => Type::TEXT,
    Option<String> => Type::TEXT,
    Option<&str> => Type::TEXT,
    bool => Type::BOOL,
    i32 => Type::INT4,
    i64 => Type::INT8,
    Vec<String> => Type::TEXT_ARRAY,
    Vec<&str> => Type::TEXT_ARRAY,
    Vec<bool> => Type::BOOL_ARRAY,
    &[String] => Type::TEXT_ARRAY,
}

fn typed<'a>(params: &'a [&'a dyn Param]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().map(|p| (p.as_sql(), p.sql_type())).collect()
}

/// An open connection that counts the statements it sends (for the
/// constant-round-trip guarantees and the benchmarks).
pub struct Db {
    client: Client,
    /// Statements sent, shared with its siblings.
    statements: Arc<AtomicU64>,
    /// How it was opened, with the password it used: a sibling opens the same way.
    options: ConnectOptions,
    /// The session as the server reports it.
    pub info: ServerInfo,
    /// A [`Transaction`] was dropped open: roll it back before the next statement.
    abandoned: AtomicBool,
}

/// Cancel tokens of every connection opened, so Ctrl-C can stop what the
/// server is doing (a statement waiting on a lock would otherwise hold the
/// locks it already has until lock_timeout).
struct OpenConnection {
    token: tokio_postgres::CancelToken,
    options: ConnectOptions,
}
static OPEN: std::sync::Mutex<Vec<OpenConnection>> = std::sync::Mutex::new(Vec::new());

/// Asks the server to cancel whatever each open connection is running, over a
/// new connection to the same address with the same TLS. Errors are ignored:
/// this runs on the way out.
pub(crate) async fn cancel_all() {
    let open: Vec<OpenConnection> = OPEN
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    for OpenConnection { token, options } in open {
        let Ok((stream, server_name)) = dial(&options).await else {
            continue;
        };
        let _ = match tls::connector(options.sslmode, options.sslrootcert.as_deref()) {
            Ok(Some(mut make)) => match MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(
                &mut make,
                &server_name,
            ) {
                Ok(tls) => token.cancel_query_raw(stream, tls).await,
                Err(_) => continue,
            },
            _ => token.cancel_query_raw(stream, NoTls).await,
        };
    }
}

/// Dials the server: the address given, or, with a TLS server name, the host
/// resolved and the name kept for verification. Returns the socket and the
/// name TLS checks the certificate against.
async fn dial(opts: &ConnectOptions) -> Result<(tokio::net::TcpStream, String)> {
    if opts.host.starts_with('/') {
        bail!("{} is a Unix socket directory; rlsctl connects over TCP (through the tunnel: 127.0.0.1)", opts.host);
    }
    let address = resolve(&opts.host, opts.port).await?;
    let stream = tokio::time::timeout(
        opts.connect_timeout,
        tokio::net::TcpStream::connect((address, opts.port)),
    )
    .await
    .map_err(|_| anyhow!("timed out after {:?}", opts.connect_timeout))?
    .map_err(|e| {
        // On this machine, nothing listening is most often a tunnel not started.
        if e.kind() == std::io::ErrorKind::ConnectionRefused && address.is_loopback() {
            anyhow!("{e}: nothing listens on {}:{} (start the tunnel with `rlsctl tunnel`, or add --via-ssm or --via-ssh)", opts.host, opts.port)
        } else {
            anyhow::Error::new(e)
        }
    })?;
    stream.set_nodelay(true)?;
    let name = opts
        .tls_server_name
        .clone()
        .unwrap_or_else(|| opts.host.clone());
    Ok((stream, name))
}

/// Opens a connection, resolving the password and TLS as configured.
pub async fn connect(opts: &ConnectOptions) -> Result<Db> {
    let mut opts = opts.clone();
    let mut password = match (&opts.password, opts.password_from.clone()) {
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
    let renewal = opts.password_from.as_ref().map(|s| s.renewal());
    let client = match open(&opts, password.as_ref()).await {
        Err(e) if password.is_none() && is_password_missing(&e) => {
            if !opts.allow_prompt || !std::io::stdin().is_terminal() {
                bail!(
                    "{} needs a password and none was given: set PGPASSWORD, use ~/.pgpass or pass --password-from",
                    opts.describe()
                );
            }
            password = Some(Secret::new(prompt(&format!("password for {}", opts.user))?));
            open(&opts, password.as_ref()).await?
        }
        Err(e)
            if renewal == Some(Renewal::OnRejection) && e.downcast_ref::<Rejected>().is_some() =>
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
    finish(client, options, Arc::new(AtomicU64::new(0))).await
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

/// The server rejected the password (SQLSTATE 28P01).
#[derive(Debug)]
struct Rejected(String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejected {}

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
    if let Ok(mut open) = OPEN.lock() {
        open.push(OpenConnection {
            token: client.cancel_token(),
            options: ConnectOptions {
                password: None,
                password_from: None,
                ..options.clone()
            },
        });
    }
    Ok(Db {
        client,
        statements,
        options,
        info,
        abandoned: AtomicBool::new(false),
    })
}

fn is_password_missing(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains("password missing")
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
    let fail = |e: tokio_postgres::Error| {
        let text = describe(&e);
        let hint = if text.contains("certificate") {
            match &opts.tls_server_name {
                Some(name) => format!(" (the certificate was checked against {name:?})"),
                None => " (use --tls-server-name NAME to verify against the name the certificate was issued for)".into(),
            }
        } else {
            String::new()
        };
        let message = format!("cannot connect to {target}: {text}{hint}");
        if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD) {
            anyhow::Error::new(Rejected(message))
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
    // A cleartext request (an IAM token) is answered under TLS only.
    let (in_the_clear, under_tls) = if opts.allow_weak_auth {
        (Accepts::Anything, Accepts::Anything)
    } else if opts
        .password_from
        .as_ref()
        .is_some_and(|s| s.cleartext_under_tls())
    {
        (Accepts::ScramOnly, Accepts::Cleartext)
    } else {
        (Accepts::ScramOnly, Accepts::ScramOnly)
    };
    let stream = AuthGuard::new(stream, ssl_requested, in_the_clear);
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
            let tls = GuardedTls::new(tls, under_tls);
            let (client, connection) = config.connect_raw(stream, tls).await.map_err(fail)?;
            tokio::spawn(connection);
            client
        }
    };
    Ok(client)
}

async fn resolve(host: &str, port: u16) -> Result<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .map(|addr| addr.ip())
        .ok_or_else(|| anyhow!("{host} resolves to no address"))
}

impl Db {
    /// Before every statement: roll back a transaction dropped open (see
    /// [`Transaction`]), then count it.
    async fn before_statement(&self) {
        self.settle().await;
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs one statement: `before_statement`, then `statement` (a future,
    /// which does nothing until awaited), its duration logged at trace level
    /// (`RLSCTL_LOG=rlsctl=trace`) with only the first 80 characters of `sql`,
    /// which never hold a password.
    async fn timed<T>(&self, sql: &str, statement: impl std::future::Future<Output = T>) -> T {
        self.before_statement().await;
        let started = std::time::Instant::now();
        let result = statement.await;
        if tracing::enabled!(tracing::Level::TRACE) {
            let head: String = sql
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(80)
                .collect();
            tracing::trace!(ms = started.elapsed().as_secs_f64() * 1000.0, sql = %head, "statement");
        }
        result
    }

    /// A second connection to the same database as the same user, for reads
    /// that may run beside this one's (its statements count with this one's).
    pub(crate) async fn sibling(&self) -> Result<Db> {
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

    /// The connection to the server is gone (the server ended it, or the
    /// tunnel dropped): what fails on it next says nothing about the database.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// How this connection was opened (host, port, user; the password inside
    /// is never to be printed).
    pub(crate) fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Statements sent on this connection and its siblings so far (including
    /// the session query at connect).
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Runs a query with bound parameters.
    ///
    /// Every statement goes out as one unnamed Parse/Bind/Execute/Sync with
    /// its parameter types given: one round trip, and nothing named is left on
    /// a server connection, so it works through a transaction pooler (PgBouncer
    /// in `pool_mode = transaction` hands the next statement to whichever
    /// server connection is free, where a named prepared statement does not
    /// exist).
    pub async fn query(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let typed = typed(params);
        self.timed(sql, self.client.query_typed(sql, &typed)).await
    }

    /// Runs a query that returns exactly one row.
    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Row, tokio_postgres::Error> {
        let typed = typed(params);
        self.timed(sql, self.client.query_typed_one(sql, &typed))
            .await
    }

    /// Runs a statement with bound parameters; returns the rows affected.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<u64, tokio_postgres::Error> {
        let typed = typed(params);
        self.timed(sql, self.client.execute_typed(sql, &typed))
            .await
    }

    /// Prepares a named statement for repeated use (the benchmark's hot loop,
    /// on a direct connection; named statements do not survive a transaction
    /// pooler).
    pub async fn prepare(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        self.before_statement().await;
        self.client.prepare(sql).await
    }

    /// Runs a prepared statement.
    pub async fn query_prepared(
        &self,
        statement: &tokio_postgres::Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.before_statement().await;
        self.client.query(statement, params).await
    }

    /// Runs SQL without parameters through the simple protocol (utility statements, BEGIN, ...).
    pub async fn simple(
        &self,
        sql: &str,
    ) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        if sql.contains("PASSWORD") {
            // Role statements may carry a SCRAM verifier: never traced.
            self.before_statement().await;
            return self.client.simple_query(sql).await;
        }
        self.timed(sql, self.client.simple_query(sql)).await
    }
}

/// A one-line description of a driver error: the server's message with its
/// detail and hint, and the SQLSTATE. Never includes the statement text.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{} [{}]", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    crate::logging::error_chain(err)
}

/// Extension for turning driver errors into anyhow errors with context.
pub(crate) trait DbResultExt<T> {
    /// Adds what we were doing to the server's message.
    fn doing(self, what: &str) -> Result<T>;
}

impl<T> DbResultExt<T> for Result<T, tokio_postgres::Error> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| {
            anyhow::Error::new(DbError {
                what: what.to_string(),
                code: e.code().cloned(),
                message: describe(&e),
            })
        })
    }
}

/// A statement the server refused or could not finish, with what rlsctl was
/// doing and the server's SQLSTATE, so a caller can tell a lock wait or a
/// timeout from the rest without reading the text.
#[derive(Debug)]
pub(crate) struct DbError {
    /// What rlsctl was doing (`reading NULL tenants`).
    pub(crate) what: String,
    /// The server's SQLSTATE, when it sent one.
    pub(crate) code: Option<tokio_postgres::error::SqlState>,
    /// The server's message, as [`describe`] writes it.
    pub(crate) message: String,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.message)
    }
}

impl std::error::Error for DbError {}

impl DbError {
    /// `err` is a wait for a lock that ran out (`lock_timeout`) or a
    /// statement cancelled by `statement_timeout`.
    pub(crate) fn timed_out(err: &anyhow::Error) -> bool {
        use tokio_postgres::error::SqlState;
        err.chain()
            .filter_map(|e| e.downcast_ref::<DbError>())
            .any(|e| matches!(&e.code, Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED))
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

/// [`crate::signals::until_stopped`] for work that talks to PostgreSQL: on a
/// stop signal the statements in flight are cancelled too, so the server stops
/// working on them at once rather than when it notices the closed socket.
pub(crate) async fn until_interrupted<T>(
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let result = crate::signals::until_stopped(work).await;
    if matches!(&result, Err(err) if err.is::<crate::signals::Interrupted>()) {
        cancel_all().await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

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
