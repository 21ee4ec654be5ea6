//! A throwaway local PostgreSQL: `initdb` + `pg_ctl` into a temp dir on a free
//! port, with scram password auth (and TLS when asked), at PostgreSQL's default
//! server settings. `rehearse` and the tests share it. Stopped and removed on drop.
//!
//! Two shapes: a plain cluster where the operator `postgres` is the superuser,
//! and an RDS-shaped one where the superuser is `rdsadmin` (as on RDS, out of
//! the customer's reach) and `postgres` is the RDS master: `LOGIN NOSUPERUSER
//! INHERIT CREATEDB CREATEROLE NOREPLICATION`, a member of `rds_superuser`,
//! owner of the databases the sandbox creates.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::model::secret::{random_hex, Secret};
use crate::model::sql::{fill, quote_ident, quote_literal, DEMO_RDS_MASTER};
use crate::pg::ConnectOptions;

/// The operator's role: the superuser of a plain sandbox, the RDS master of an
/// RDS-shaped one. Either way it is the role `apply` connects as by default.
pub const OPERATOR: &str = "postgres";

/// The real superuser of an RDS-shaped sandbox (RDS keeps its own, `rdsadmin`).
pub(crate) const RDS_SUPERUSER: &str = "rdsadmin";

/// Who runs the cutover in a sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Shape {
    /// `postgres` is a real superuser: the easy case.
    #[default]
    Superuser,
    /// `postgres` is an RDS master: not a superuser (see the module docs).
    RdsMaster,
}

/// The binaries a sandbox needs.
const BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// How to install PostgreSQL server binaries, per platform.
pub(crate) const INSTALL_HINT: &str = "install the PostgreSQL server binaries: \
Debian/Ubuntu: sudo apt-get install -y postgresql; \
Fedora: sudo dnf install -y postgresql-server; \
macOS: brew install postgresql@16; \
or point PG_BIN_DIR at the directory that holds initdb and pg_ctl";

/// TLS material for the server, PEM encoded.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Server certificate chain.
    pub cert_pem: String,
    /// Server private key.
    pub key_pem: String,
}

/// Options for a sandbox.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve TLS with this certificate.
    pub tls: Option<ServerTls>,
    /// Extra `postgresql.conf` lines.
    pub extra_config: Vec<String>,
    /// Plain superuser or RDS master.
    pub shape: Shape,
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Sandbox {
    dir: PathBuf,
    bin_dir: PathBuf,
    /// The port it listens on (127.0.0.1 only).
    pub port: u16,
    /// The name of the real superuser (`postgres`, or `rdsadmin` when RDS-shaped).
    pub superuser: String,
    /// The real superuser's password.
    pub superuser_password: Secret,
    /// The operator's ([`OPERATOR`]) password: the superuser's in a plain
    /// sandbox, the RDS master's in an RDS-shaped one.
    pub operator_password: Secret,
    /// The shape it was started with.
    pub(crate) shape: Shape,
    owner: Option<(u32, u32)>,
    running: bool,
}

/// Finds the directory with initdb, pg_ctl and postgres: `PG_BIN_DIR`, then
/// `pg_config --bindir`, then PATH, then Debian's versioned directories.
pub(crate) fn find_bin_dir() -> Result<PathBuf> {
    let has_all = |dir: &Path| BINARIES.iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if has_all(&dir) {
            return Ok(dir);
        }
        let missing = BINARIES
            .iter()
            .find(|b| !dir.join(b).is_file())
            .unwrap_or(&"initdb");
        bail!(
            "PG_BIN_DIR={} has no {missing}: {INSTALL_HINT}",
            dir.display()
        );
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_all(&dir) {
            return Ok(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_all(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versioned: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|d| has_all(d))
                .collect()
        })
        .unwrap_or_default();
    versioned.sort();
    versioned.pop().ok_or_else(|| anyhow!("no PostgreSQL server binary (initdb) found on PATH, in pg_config --bindir or PG_BIN_DIR: {INSTALL_HINT}"))
}

/// The uid/gid of the `postgres` user when running as root (initdb refuses root).
fn postgres_owner() -> Result<Option<(u32, u32)>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        _ => bail!("running as root, but there is no 'postgres' user to run the server as (create one, or run as a normal user)"),
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free local port")?;
    Ok(listener.local_addr()?.port())
}

impl Sandbox {
    /// Initializes and starts a cluster.
    pub fn start(options: &Options) -> Result<Self> {
        let bin_dir = find_bin_dir()?;
        let owner = postgres_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("rlsctl-sandbox-")
            .tempdir_in("/tmp")
            .context("creating a temp dir")?
            .keep();
        let superuser_password = Secret::new(random_hex(16));
        let (superuser, operator_password) = match options.shape {
            Shape::Superuser => (OPERATOR, superuser_password.clone()),
            Shape::RdsMaster => (RDS_SUPERUSER, Secret::new(random_hex(16))),
        };
        let mut sandbox = Self {
            dir,
            bin_dir,
            port: 0,
            superuser: superuser.to_string(),
            superuser_password,
            operator_password,
            shape: options.shape,
            owner,
            running: false,
        };
        sandbox.chown(&sandbox.dir.clone())?;
        sandbox.init(options)?;
        sandbox.launch()?;
        Ok(sandbox)
    }

    fn chown(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes `name` in the sandbox directory, readable by its owner only.
    pub fn write_private(&self, name: &str, contents: &str) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        self.chown(&path)?;
        Ok(path)
    }

    fn command(&self, binary: &str) -> Command {
        self.command_as_owner(self.bin_dir.join(binary))
    }

    /// A command run as the user that owns the cluster (`postgres` when the
    /// caller is root), in the sandbox directory: for a server beside it, such
    /// as the pooler the tests put in front.
    pub fn command_as_owner(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        if let Some((uid, gid)) = self.owner {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command.current_dir(&self.dir).env("LC_ALL", "C");
        command
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&mut self, options: &Options) -> Result<()> {
        let pwfile = self.write_private("pwfile", self.superuser_password.expose())?;
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                &self.superuser,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .context("running initdb")?;
        let _ = fs::remove_file(&pwfile);
        if !output.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        self.port = free_port()?;
        let mut config = vec![
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("port = {}", self.port),
            format!("unix_socket_directories = '{}'", self.dir.display()),
            "fsync = off".into(),
            "synchronous_commit = off".into(),
            "full_page_writes = off".into(),
            // Nothing else: lock table, connections and memory stay at
            // PostgreSQL's defaults (RDS's too), so tests see what users see.
            "password_encryption = 'scram-sha-256'".into(),
        ];
        if let Some(tls) = &options.tls {
            let cert = self.write_private("server.crt", &tls.cert_pem)?;
            let key = self.write_private("server.key", &tls.key_pem)?;
            config.push("ssl = on".into());
            config.push(format!("ssl_cert_file = '{}'", cert.display()));
            config.push(format!("ssl_key_file = '{}'", key.display()));
        }
        config.extend(options.extra_config.iter().cloned());
        let conf = self.data_dir().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf)?;
        text.push_str("\n# rlsctl sandbox\n");
        text.push_str(&config.join("\n"));
        text.push('\n');
        fs::write(&conf, text)?;
        Ok(())
    }

    fn launch(&mut self) -> Result<()> {
        self.pg_ctl("start")?;
        self.running = true;
        Ok(())
    }

    /// Restarts the server (fast shutdown), as a parameter change that needs a
    /// reboot on RDS does: settings made with `ALTER SYSTEM` take effect.
    pub fn restart(&self) -> Result<()> {
        self.pg_ctl("restart")
    }

    /// Runs `pg_ctl <action>` on the cluster and waits for it.
    fn pg_ctl(&self, action: &str) -> Result<()> {
        let log = self.dir.join("server.log");
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-m", "fast", action])
            .stdout(Stdio::null())
            .output()
            .with_context(|| format!("running pg_ctl {action}"))?;
        if !output.status.success() {
            let server_log = fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "pg_ctl {action} failed: {} {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                server_log.trim()
            );
        }
        Ok(())
    }

    /// The temp directory that holds the cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log so far.
    pub fn server_log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Connection options for `user` with `password` on database `dbname`.
    pub fn connect_options(&self, dbname: &str, user: &str, password: &Secret) -> ConnectOptions {
        ConnectOptions {
            password: Some(password.clone()),
            ..ConnectOptions::new("127.0.0.1", self.port, dbname, user)
        }
    }

    /// Connection options for the real superuser.
    pub fn superuser_options(&self, dbname: &str) -> ConnectOptions {
        self.connect_options(dbname, &self.superuser, &self.superuser_password)
    }

    /// Connection options for the operator ([`OPERATOR`]).
    pub fn operator_options(&self, dbname: &str) -> ConnectOptions {
        self.connect_options(dbname, OPERATOR, &self.operator_password)
    }

    /// Creates database `name` owned by the operator. In an RDS-shaped sandbox
    /// this first makes `rds_superuser` and the master role, as RDS does when
    /// it creates an instance.
    pub async fn create_database(&self, name: &str) -> Result<()> {
        let su = crate::pg::connect(&self.superuser_options("postgres")).await?;
        if self.shape == Shape::RdsMaster {
            // The verifier is computed here, so the cleartext never reaches the server.
            let verifier = postgres_protocol::password::scram_sha_256(
                self.operator_password.expose().as_bytes(),
            );
            let sql = fill(
                DEMO_RDS_MASTER,
                "rds_master",
                &[
                    ("master_name", &quote_literal(OPERATOR)),
                    ("master", &quote_ident(OPERATOR)),
                    ("verifier", &quote_literal(&verifier)),
                ],
            );
            su.simple(&sql)
                .await
                .map_err(|e| anyhow!("creating the RDS master: {}", crate::pg::describe(&e)))?;
        }
        su.simple(&format!(
            "CREATE DATABASE {} OWNER {}",
            quote_ident(name),
            quote_ident(OPERATOR)
        ))
        .await
        .map_err(|e| anyhow!("creating database {name}: {}", crate::pg::describe(&e)))?;
        Ok(())
    }

    /// Stops the server (fast shutdown) and removes the directory.
    pub(crate) fn stop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// Leaves the cluster running and its directory in place (for `rehearse --keep`).
    pub(crate) fn keep(mut self) -> PathBuf {
        self.running = false;
        let dir = std::mem::take(&mut self.dir);
        std::mem::forget(self);
        dir
    }

    /// The command that stops a kept cluster.
    pub(crate) fn stop_command(&self) -> String {
        let prefix = if self.owner.is_some() {
            "su postgres -s /bin/sh -c '"
        } else {
            ""
        };
        let suffix = if self.owner.is_some() { "'" } else { "" };
        format!(
            "{prefix}{} -D {} -m fast stop{suffix} && rm -rf {}",
            self.bin_dir.join("pg_ctl").display(),
            self.data_dir().display(),
            self.dir.display()
        )
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}
