//! The targets file of `monitor --targets`: a `[defaults]` table and one
//! `[[target]]` per database, each key the long flag of the same name. A
//! target's key wins over `[defaults]`, which wins over the command line and
//! the environment. Read whole before anything connects: an error names the
//! line and the field.
//!
//! ```toml
//! [defaults]
//! user = "app_user"
//! password-from = "secretsmanager:prod/app_user"
//! sslmode = "verify-full"
//!
//! [[target]]
//! name = "eu-1"
//! host = "eu-1.abc.eu-west-1.rds.amazonaws.com"
//! database = "app"
//!
//! [[target]]
//! name = "us-1"
//! database = "app"
//! via-ssm = { instance = "i-0123456789abcdef0", endpoint = "us-1.abc.us-east-1.rds.amazonaws.com" }
//! iam-auth = true
//! region = "us-east-1"
//! tables = ["customers", "orders"]
//!
//! [[target]]
//! name = "ap-1"
//! database = "app"
//! via-ssh = { bastion = "ops@bastion.ap.example.com", endpoint = "ap-1.abc.ap-south-1.rds.amazonaws.com" }
//! ```

use std::ops::Range;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::cli::{ConnectionArgs, DatabaseArgs, Shard, TargetArgs};
use crate::credentials::PasswordSource;
use crate::model::toml_file::TomlFile;
use crate::pg::tls::SslMode;

/// One database of the fleet, with everything needed to check it.
#[derive(Debug, Clone)]
pub(crate) struct FleetTarget {
    /// Its name (the `target` label, the report's section).
    pub(crate) name: String,
    /// Where and how to connect.
    pub(crate) conn: ConnectionArgs,
    /// What the bundle protects there.
    pub(crate) target: TargetArgs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Settings,
    #[serde(default)]
    target: Vec<Spanned<Settings>>,
}

/// The keys of `[defaults]` and of each `[[target]]` (`name` only there).
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Settings {
    name: Option<Spanned<String>>,
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    user: Option<String>,
    password_from: Option<Spanned<String>>,
    iam_auth: Option<bool>,
    sslmode: Option<Spanned<String>>,
    sslrootcert: Option<PathBuf>,
    tls_server_name: Option<String>,
    via_ssm: Option<ViaSsm>,
    via_ssh: Option<ViaSsh>,
    ssh_config: Option<PathBuf>,
    profile: Option<String>,
    region: Option<String>,
    db_instance: Option<String>,
    schema: Option<String>,
    tables: Option<Vec<String>>,
    tenant_column: Option<String>,
    tenant_setting: Option<String>,
    app_role: Option<String>,
    admin_role: Option<String>,
}

/// `via-ssm = { instance = "i-…", endpoint = "db.….rds.amazonaws.com", port = 5432 }`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ViaSsm {
    instance: String,
    endpoint: String,
    port: Option<u16>,
}

/// `via-ssh = { bastion = "user@host", endpoint = "db.….rds.amazonaws.com", port = 5432 }`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ViaSsh {
    bastion: String,
    endpoint: String,
    port: Option<u16>,
}

impl Settings {
    /// Whether these settings name a tunnel of their own.
    fn tunnel(&self) -> bool {
        self.via_ssm.is_some() || self.via_ssh.is_some()
    }
}

/// Reads the targets in `text` (the file at `path`, for messages) over the
/// flags in `base`.
pub(crate) fn parse(text: &str, path: &str, base: &DatabaseArgs) -> Result<Vec<FleetTarget>> {
    let toml = TomlFile { path, text };
    let file: File = toml.parse()?;
    let at = |span: Range<usize>, field: &str| toml.at(span, field);
    if file.target.is_empty() {
        bail!("{path}: no [[target]]: name at least one database");
    }
    if file.defaults.tunnel() {
        bail!(
            "{path}: [defaults] names a tunnel, which reaches one database: give each [[target]] its own via-ssm or via-ssh"
        );
    }
    if let Some(name) = &file.defaults.name {
        bail!(
            "{}: [defaults] has no name; each [[target]] has its own",
            at(name.span(), "name")
        );
    }
    // (a set: a fleet file of 100,000 targets is checked in linear time)
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut targets = Vec::new();
    for entry in &file.target {
        let target = entry.get_ref();
        let Some(spanned) = &target.name else {
            bail!(
                "{}: every [[target]] needs a name",
                at(entry.span(), "name")
            );
        };
        let name = spanned.get_ref().trim().to_string();
        if name.is_empty() {
            bail!("{}: a target needs a name", at(spanned.span(), "name"));
        }
        if seen.contains(&name) {
            bail!(
                "{}: {name:?} names two targets (each series is labelled by it)",
                at(spanned.span(), "name")
            );
        }
        seen.insert(name.clone());
        let mut db = base.clone();
        overlay(&mut db, &file.defaults, &at)?;
        overlay(&mut db, target, &at)?;
        // A tunnel from the command line (or [defaults]) leads to one
        // database: every target would be checked there, and reported as
        // itself. Each needs a tunnel of its own.
        let shared_tunnel = (base.conn.via_ssm || base.conn.via_ssh.is_some()) && !target.tunnel();
        if shared_tunnel {
            bail!(
                "{}: target {name:?} has no tunnel of its own, and the tunnel from the command line (--via-ssm, --via-ssh) reaches one database: every target would be checked there; give each target its own via-ssm or via-ssh, or run without --targets",
                at(entry.span(), "via-ssm")
            );
        }
        if target.via_ssm.is_some() && target.via_ssh.is_some() {
            bail!(
                "{}: target {name:?} names both via-ssm and via-ssh; one tunnel leads to it",
                at(entry.span(), "via-ssh")
            );
        }
        if !target.tunnel() && target.host.is_none() && file.defaults.host.is_none() {
            bail!(
                "{}: target {name:?} has no host (or via-ssm, via-ssh)",
                at(entry.span(), "host")
            );
        }
        targets.push(FleetTarget {
            name,
            conn: db.conn,
            target: db.target,
        });
    }
    Ok(targets)
}

/// Sets the keys of `settings` on `db`, over what it holds.
fn overlay(
    db: &mut DatabaseArgs,
    settings: &Settings,
    at: &dyn Fn(Range<usize>, &str) -> String,
) -> Result<()> {
    let s = settings.clone();
    let conn = &mut db.conn;
    set(&mut conn.host, s.host);
    set(&mut conn.port, s.port);
    set(&mut conn.dbname, s.database);
    set_some(&mut conn.user, s.user);
    set_some(&mut conn.sslrootcert, s.sslrootcert);
    set_some(&mut conn.tls_server_name, s.tls_server_name);
    set_some(&mut conn.ssh_config, s.ssh_config);
    set_some(&mut conn.aws.profile, s.profile);
    set_some(&mut conn.aws.region, s.region);
    set_some(&mut conn.aws.db_instance, s.db_instance);
    credentials(conn, settings, at)?;
    if let Some(mode) = &settings.sslmode {
        let parsed =
            <SslMode as clap::ValueEnum>::from_str(mode.get_ref(), true).map_err(|_| {
                anyhow!(
                    "{}: {:?} is none of disable, prefer, require, verify-ca, verify-full",
                    at(mode.span(), "sslmode"),
                    mode.get_ref()
                )
            })?;
        conn.sslmode = Some(parsed);
    }
    tunnel(conn, s.via_ssm, s.via_ssh);
    let target = &mut db.target;
    set(&mut target.schema, s.schema);
    set(&mut target.tables, s.tables);
    set(&mut target.tenant_column, s.tenant_column);
    set(&mut target.tenant_setting, s.tenant_setting);
    set(&mut target.app_role, s.app_role);
    set(&mut target.admin_role, s.admin_role);
    Ok(())
}

/// `field` takes `value` when the key is there.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// An optional `field` takes `value` when the key is there.
fn set_some<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// `password-from` and `iam-auth`: the one given last replaces the other.
fn credentials(
    conn: &mut ConnectionArgs,
    settings: &Settings,
    at: &dyn Fn(Range<usize>, &str) -> String,
) -> Result<()> {
    if let Some(source) = &settings.password_from {
        let parsed: PasswordSource = source
            .get_ref()
            .parse()
            .map_err(|e: String| anyhow!("{}: {e}", at(source.span(), "password-from")))?;
        if parsed == PasswordSource::Prompt {
            bail!(
                "{}: monitor never prompts; name a source it can read",
                at(source.span(), "password-from")
            );
        }
        conn.password_from = Some(parsed);
        conn.iam_auth = false;
    }
    if let Some(iam) = settings.iam_auth {
        conn.iam_auth = iam;
        if iam {
            conn.password_from = None;
        }
    }
    Ok(())
}

/// A target's own tunnel: SSM to an instance, or ssh to a bastion, each to
/// the target's endpoint.
fn tunnel(conn: &mut ConnectionArgs, ssm: Option<ViaSsm>, ssh: Option<ViaSsh>) {
    if let Some(ssm) = ssm {
        conn.via_ssm = true;
        conn.via_ssh = None;
        conn.aws.instance_id = Some(ssm.instance);
        conn.aws.rds_endpoint = Some(ssm.endpoint);
        set(&mut conn.aws.remote_port, ssm.port);
    }
    if let Some(ssh) = ssh {
        conn.via_ssm = false;
        conn.via_ssh = Some(ssh.bastion);
        conn.aws.rds_endpoint = Some(ssh.endpoint);
        set(&mut conn.aws.remote_port, ssh.port);
    }
}

/// Whether `name` falls in `shard`: a stable hash (the first eight bytes of
/// its SHA-256), the same on every machine and in every release.
pub(crate) fn in_shard(name: &str, shard: Shard) -> bool {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % u64::from(shard.count) == u64::from(shard.index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The flags as the command line would give them.
    fn base() -> DatabaseArgs {
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            db: DatabaseArgs,
        }
        Flags::parse_from(["rlsctl", "--host", "cli.example", "--tables", "a,b"]).db
    }

    #[test]
    fn a_tunnel_on_the_command_line_is_refused_unless_each_target_has_its_own() {
        let mut through_bastion = base();
        through_bastion.conn.via_ssh = Some("bastion".into());
        let two_hosts = "[[target]]\nname = \"a\"\nhost = \"a.example\"\n[[target]]\nname = \"b\"\nhost = \"b.example\"\n";
        let err = parse(two_hosts, "f.toml", &through_bastion)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("target \"a\" has no tunnel of its own"),
            "{err}"
        );
        let own = "[[target]]\nname = \"a\"\nvia-ssm = { instance = \"i-1\", endpoint = \"a.example\" }\n\
                   [[target]]\nname = \"b\"\nvia-ssm = { instance = \"i-2\", endpoint = \"b.example\" }\n";
        let targets = parse(own, "f.toml", &through_bastion).unwrap();
        assert!(targets
            .iter()
            .all(|t| t.conn.via_ssm && t.conn.via_ssh.is_none()));
        // Each through a bastion of its own, to an endpoint of its own.
        let own_ssh = "[[target]]\nname = \"a\"\nvia-ssh = { bastion = \"ops@b1\", endpoint = \"a.example\", port = 5433 }\n\
                       [[target]]\nname = \"b\"\nvia-ssm = { instance = \"i-2\", endpoint = \"b.example\" }\n";
        let targets = parse(own_ssh, "f.toml", &through_bastion).unwrap();
        let (a, b) = (&targets[0].conn, &targets[1].conn);
        assert_eq!(
            (
                a.via_ssm,
                a.via_ssh.as_deref(),
                a.aws.rds_endpoint.as_deref(),
                a.aws.remote_port
            ),
            (false, Some("ops@b1"), Some("a.example"), 5433)
        );
        assert_eq!(
            (
                b.via_ssm,
                b.via_ssh.as_deref(),
                b.aws.rds_endpoint.as_deref()
            ),
            (true, None, Some("b.example"))
        );
        // [defaults] names one tunnel for all of them.
        let defaults = "[defaults]\nvia-ssm = { instance = \"i-1\", endpoint = \"a.example\" }\n[[target]]\nname = \"a\"\n";
        let err = format!("{:#}", parse(defaults, "f.toml", &base()).unwrap_err());
        assert!(err.contains("[defaults] names a tunnel"), "{err}");
        let both = "[[target]]\nname = \"a\"\nvia-ssh = { bastion = \"b\", endpoint = \"a\" }\nvia-ssm = { instance = \"i\", endpoint = \"a\" }\n";
        let err = format!("{:#}", parse(both, "f.toml", &base()).unwrap_err());
        assert!(err.contains("both via-ssm and via-ssh"), "{err}");
    }

    #[test]
    fn a_target_takes_its_keys_over_the_defaults_over_the_flags() {
        let targets = parse(
            r#"
[defaults]
user = "app_user"
password-from = "env:APP_PASSWORD"
tables = ["customers"]

[[target]]
name = "eu-1"
host = "eu.example"
port = 6432
database = "app"

[[target]]
name = "us-1"
database = "app"
via-ssm = { instance = "i-0123", endpoint = "us.example" }
iam-auth = true
tables = ["orders", "lines"]
"#,
            "targets.toml",
            &base(),
        )
        .unwrap();
        let (eu, us) = (&targets[0], &targets[1]);
        assert_eq!(
            (eu.name.as_str(), eu.conn.host.as_str(), eu.conn.port),
            ("eu-1", "eu.example", 6432)
        );
        assert_eq!(eu.conn.user.as_deref(), Some("app_user"));
        assert_eq!(
            eu.conn.password_from,
            Some(PasswordSource::Env("APP_PASSWORD".into()))
        );
        assert_eq!(eu.target.tables, ["customers"]);
        assert!(us.conn.via_ssm && us.conn.iam_auth && us.conn.password_from.is_none());
        assert_eq!(us.conn.aws.rds_endpoint.as_deref(), Some("us.example"));
        assert_eq!(us.target.tables, ["orders", "lines"]);
    }

    #[test]
    fn a_bad_targets_file_names_the_line_and_the_field() {
        let err = |text: &str| format!("{:#}", parse(text, "targets.toml", &base()).unwrap_err());
        let port = err("[[target]]\nname = \"a\"\nhost = \"h\"\nport = \"x\"\n");
        assert!(port.contains("line 4") && port.contains("port"), "{port}");
        let key = err("[[target]]\nname = \"a\"\nhots = \"h\"\n");
        assert!(key.contains("line 3") && key.contains("hots"), "{key}");
        let mode = err("[[target]]\nname = \"a\"\nhost = \"h\"\nsslmode = \"strict\"\n");
        assert!(
            mode.contains("line 4") && mode.contains("sslmode"),
            "{mode}"
        );
        let source = err(
            "[defaults]\npassword-from = \"hunter2\"\n[[target]]\nname = \"a\"\nhost = \"h\"\n",
        );
        assert!(
            source.contains("line 2") && source.contains("password-from"),
            "{source}"
        );
        assert!(!source.contains("hunter2"), "{source}");
        let twice =
            err("[[target]]\nname = \"a\"\nhost = \"h\"\n[[target]]\nname = \"a\"\nhost = \"h\"\n");
        assert!(
            twice.contains("line 5") && twice.contains("two targets"),
            "{twice}"
        );
        let none = err("[defaults]\nuser = \"u\"\n");
        assert!(none.contains("no [[target]]"), "{none}");
    }

    #[test]
    fn shards_split_a_fleet_into_disjoint_parts_whose_union_is_the_fleet() {
        let names: Vec<String> = (0..200).map(|i| format!("db-{i}")).collect();
        let count = 4;
        let mut union = Vec::new();
        for index in 0..count {
            let part: Vec<&String> = names
                .iter()
                .filter(|n| in_shard(n, Shard { index, count }))
                .collect();
            assert!(!part.is_empty(), "shard {index} is empty");
            union.extend(part);
        }
        union.sort();
        let mut all: Vec<&String> = names.iter().collect();
        all.sort();
        assert_eq!(union, all);
    }
}
