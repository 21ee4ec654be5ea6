//! What a connection is opened with: where, as whom, with which TLS, and
//! where its password comes from when the server asks for one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::tls::SslMode;
use crate::model::secret::Secret;

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
