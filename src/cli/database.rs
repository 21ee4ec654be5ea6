//! Where and how to connect, and what the bundle protects: the flags every database command shares.

use super::*;

/// Where and how to connect to PostgreSQL (libpq conventions).
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// Server host name or address.
    #[arg(long, env = "PGHOST", default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Server port (15432 is the SSM tunnel's local port).
    #[arg(long, env = "PGPORT", default_value_t = 15432)]
    pub(crate) port: u16,
    /// Database name.
    #[arg(
        short = 'd',
        long = "dbname",
        env = "PGDATABASE",
        default_value = "edgarautoshop"
    )]
    pub(crate) dbname: String,
    /// User name (the default depends on the command: the app role for verify and monitor, postgres otherwise).
    #[arg(short = 'U', long, env = "PGUSER")]
    pub(crate) user: Option<String>,
    /// Where the password comes from: prompt, env:VAR, file:PATH, ssm:/parameter/name,
    /// secretsmanager:SECRET (name or ARN; a JSON secret also gives the user name) or
    /// rds-master (the secret RDS keeps for the master user of --db-instance).
    /// Without it: PGPASSWORD, then ~/.pgpass (PGPASSFILE), then a prompt on a TTY.
    #[arg(long, env = "RLSCTL_PASSWORD_FROM", value_name = "SOURCE", value_parser = SourceParser)]
    pub(crate) password_from: Option<PasswordSource>,
    /// Authenticate with an RDS IAM auth token instead of a password: made from the AWS
    /// credentials, fresh for every connection, signed for RDS_ENDPOINT and --remote-port
    /// (else --host and --port). Needs TLS (sslmode require or stronger).
    #[arg(long, env = "RLSCTL_IAM_AUTH", conflicts_with = "password_from")]
    pub(crate) iam_auth: bool,
    /// TLS mode: disable, prefer, require, verify-ca or verify-full. Default:
    /// verify-full when a TLS server name is set or the connection goes through
    /// an SSM tunnel (anything weaker must be asked for), else prefer.
    #[arg(long, env = "PGSSLMODE", value_enum)]
    pub(crate) sslmode: Option<SslMode>,
    /// Answer a server that asks for a cleartext or MD5 password. Refused by
    /// default, as libpq's require_auth can: a fake server on the local port
    /// would capture it.
    #[arg(long, env = "RLSCTL_ALLOW_WEAK_AUTH")]
    pub(crate) allow_weak_auth: bool,
    /// CA certificates (PEM) to verify the server with; the system roots when not given.
    #[arg(long, env = "PGSSLROOTCERT", value_name = "FILE")]
    pub(crate) sslrootcert: Option<PathBuf>,
    /// Verify the server certificate against NAME while dialling --host (for a tunnel:
    /// dial 127.0.0.1, verify the RDS endpoint name). Defaults to RDS_ENDPOINT with --via-ssm.
    #[arg(long, env = "RLSCTL_TLS_SERVER_NAME", value_name = "NAME")]
    pub(crate) tls_server_name: Option<String>,
    /// Give up connecting after this long (e.g. 10s, 500ms).
    #[arg(long, env = "PGCONNECT_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub(crate) connect_timeout: Duration,
    /// Open an SSM tunnel on a free local port for the length of the command and connect
    /// through it (instead of --host/--port); it is always torn down afterwards.
    #[arg(long, help_heading = "AWS", conflicts_with = "via_ssh")]
    pub(crate) via_ssm: bool,
    /// Open an SSH tunnel through [USER@]BASTION instead (the runbook's fallback when SSM
    /// fails): ssh -N -L 127.0.0.1:<free port>:RDS_ENDPOINT:<remote port>, for the length
    /// of the command; it is always stopped afterwards.
    #[arg(
        long,
        env = "RLSCTL_VIA_SSH",
        value_name = "[USER@]BASTION",
        help_heading = "SSH tunnel"
    )]
    pub(crate) via_ssh: Option<String>,
    /// An ssh_config file for --via-ssh (ssh -F): keys, known hosts, jump hosts.
    #[arg(
        long,
        env = "RLSCTL_SSH_CONFIG",
        value_name = "FILE",
        help_heading = "SSH tunnel"
    )]
    pub(crate) ssh_config: Option<PathBuf>,
    #[command(flatten, next_help_heading = "AWS")]
    pub(crate) aws: AwsArgs,
}

/// AWS: the credentials and region every AWS call uses, the RDS instance, and
/// where the SSM tunnel goes and how the plugin is run.
#[derive(Debug, Clone, Args)]
pub(crate) struct AwsArgs {
    /// The EC2 instance (SSM-managed) that forwards to the database.
    #[arg(long, env = "INSTANCE_ID", value_name = "ID")]
    pub(crate) instance_id: Option<String>,
    /// The RDS endpoint the tunnel dials (also the TLS server name through a tunnel, and
    /// the host an IAM auth token is signed for).
    #[arg(long, env = "RDS_ENDPOINT", value_name = "HOST")]
    pub(crate) rds_endpoint: Option<String>,
    /// The RDS DB instance (or Aurora cluster) identifier, for --rds and rds-master
    /// (else the first label of RDS_ENDPOINT).
    #[arg(long, env = "RDS_INSTANCE_ID", value_name = "ID")]
    pub(crate) db_instance: Option<String>,
    /// The database port on the RDS side.
    #[arg(long, env = "RDS_PORT", default_value_t = 5432)]
    pub(crate) remote_port: u16,
    /// The session-manager-plugin executable (else SESSION_MANAGER_PLUGIN, else PATH).
    #[arg(long, env = "SESSION_MANAGER_PLUGIN", value_name = "PATH")]
    pub(crate) plugin: Option<PathBuf>,
    /// AWS profile (standard chain otherwise: env, SSO, instance role).
    #[arg(long, env = "AWS_PROFILE")]
    pub(crate) profile: Option<String>,
    /// AWS region (else the profile's or AWS_REGION).
    #[arg(long, env = "AWS_REGION")]
    pub(crate) region: Option<String>,
    /// How long to wait for the tunnel (the plugin, or ssh) to open the local port.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) start_timeout: Duration,
    /// Accept a session-manager-plugin (1.2.497.0 or older, or a build from
    /// source) that takes the session token on its command line, where any
    /// local user can read it. Refused otherwise.
    #[arg(long)]
    pub(crate) allow_token_in_argv: bool,
}

/// What the bundle protects: schema, tables, tenant column and setting, roles.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// Schema that holds the tenant tables.
    #[arg(long, env = "RLSCTL_SCHEMA", default_value = "public")]
    pub(crate) schema: String,
    /// Tenant tables, comma-separated (names as they are in the catalog, unquoted).
    #[arg(
        long = "tables",
        env = "RLSCTL_TENANT_TABLES",
        value_delimiter = ',',
        default_value = "customers,vehicles,appointments,services"
    )]
    pub(crate) tables: Vec<String>,
    /// Column that holds the tenant id in every tenant table.
    #[arg(long, env = "RLSCTL_TENANT_COLUMN", default_value = "tenant_id")]
    pub(crate) tenant_column: String,
    /// Session setting that carries the current tenant (set with set_config(..., true)).
    #[arg(long, env = "RLSCTL_TENANT_SETTING", default_value = "app.tenant_id")]
    pub(crate) tenant_setting: String,
    /// The application's role (LOGIN, subject to RLS).
    #[arg(long, env = "RLSCTL_APP_ROLE", default_value = "app_user")]
    pub(crate) app_role: String,
    /// The break-glass role (reaches every row through its own policy).
    #[arg(long, env = "RLSCTL_ADMIN_ROLE", default_value = "tenant_admin")]
    pub(crate) admin_role: String,
}

/// The database a command works on: where to connect, and what the bundle
/// protects there.
#[derive(Debug, Clone, Args)]
pub(crate) struct DatabaseArgs {
    #[command(flatten, next_help_heading = "Connection")]
    pub(crate) conn: ConnectionArgs,
    #[command(flatten, next_help_heading = "Target")]
    pub(crate) target: TargetArgs,
}
