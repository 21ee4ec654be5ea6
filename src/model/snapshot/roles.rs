//! Roles as the snapshot sees them: the bundle's two, and who reaches every row.

/// A role that reaches every row of at least one tenant table, and how (see
/// `sql/inspect/reach.sql`): the one notion every "is this a bypass" question
/// asks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reacher {
    /// The role, or `PUBLIC` when an always-true policy names PUBLIC.
    pub(crate) role: String,
    /// It can log in.
    pub(crate) login: bool,
    /// Why the role at the end of the path reaches rows: superuser,
    /// BYPASSRLS, owner, an always-true policy, or CREATEROLE (15 and older).
    pub(crate) reason: String,
    /// How many of the tenant tables it reaches.
    pub(crate) tables: i64,
    /// It reaches every tenant table.
    pub(crate) all_tables: bool,
    /// The membership path from this role to the one that reaches rows
    /// itself (one element when it does so itself).
    pub(crate) path: Vec<String>,
    /// What runs with this role's rights (a view, a SECURITY DEFINER
    /// function) reads every row as it is, without first changing anything:
    /// superuser, BYPASSRLS, or an always-true policy through inherited
    /// membership. (An owner under FORCE, or a role that must SET ROLE or
    /// grant itself something first, reaches rows only by acting.)
    #[serde(default)]
    pub(crate) reads_as_itself: bool,
    /// The way the role at the end of the path reaches rows (`reason` says
    /// it in words). An older rlsctl recorded none: [`ReachKind::Unknown`].
    #[serde(default)]
    pub(crate) kind: ReachKind,
    /// For [`ReachKind::Policy`], the always-true policy's name.
    #[serde(default)]
    pub(crate) policy: Option<String>,
}

/// How a role reaches every row (`sql/inspect/reach.sql`'s `kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReachKind {
    /// SUPERUSER.
    Superuser,
    /// BYPASSRLS.
    Bypassrls,
    /// It owns a tenant table (and can turn RLS or FORCE off).
    Owner,
    /// A permissive policy whose USING is always true names it.
    Policy,
    /// CREATEROLE on PostgreSQL 15 and older: it can grant itself the rest.
    Createrole,
    /// REPLICATION: a base backup or logical decoding reads below row security.
    Replication,
    /// A predefined role that reaches the server's files or programs, or
    /// RDS's `rds_replication`: below row security too.
    Server,
    /// Recorded by an rlsctl that did not record the kind, or one this
    /// rlsctl does not know.
    #[default]
    #[serde(other)]
    Unknown,
}

impl ReachKind {
    /// It reads below row security, through the server rather than a query.
    pub(crate) fn below_row_security(self) -> bool {
        matches!(self, Self::Replication | Self::Server)
    }

    /// From the read's `kind` column (`sql/inspect/reach.sql`).
    pub(crate) fn from_code(code: &str) -> Self {
        match code {
            "superuser" => Self::Superuser,
            "bypassrls" => Self::Bypassrls,
            "owner" => Self::Owner,
            "policy" => Self::Policy,
            "createrole" => Self::Createrole,
            "replication" => Self::Replication,
            "server" => Self::Server,
            _ => Self::Unknown,
        }
    }
}

impl Reacher {
    /// What takes this role out of the set: the grant at the start of its
    /// path, or else the attribute or object that puts it there.
    pub(crate) fn undo(&self) -> String {
        use crate::model::sql::quote_ident;
        let role = quote_ident(&self.role);
        match (self.path.as_slice(), self.kind) {
            ([only], _) if only == "PUBLIC" => {
                format!("drop or narrow the always-true policy ({})", self.reason)
            }
            ([member, next, ..], _) => {
                format!("REVOKE {} FROM {}", quote_ident(next), quote_ident(member))
            }
            (_, ReachKind::Superuser) => format!("ALTER ROLE {role} NOSUPERUSER"),
            (_, ReachKind::Bypassrls) => format!("ALTER ROLE {role} NOBYPASSRLS"),
            (_, ReachKind::Replication) => format!("ALTER ROLE {role} NOREPLICATION"),
            (_, ReachKind::Createrole) => format!("ALTER ROLE {role} NOCREATEROLE"),
            (_, ReachKind::Owner) => format!(
                "make another role own the tables (ALTER TABLE ... OWNER TO ...): {} must not own what it is isolated in",
                self.role
            ),
            _ => format!("undo what makes {} reach every row: {}", self.role, self.reason),
        }
    }

    /// `reporter → tenant_admin (policy rlsctl_break_glass is USING (true))`.
    pub(crate) fn describe(&self) -> String {
        let scope = if self.all_tables {
            String::new()
        } else {
            format!(", on {} tenant table(s)", self.tables)
        };
        format!("{} ({}{scope})", self.path.join(" → "), self.reason)
    }
}

/// One of the bundle's roles (the app role or the break-glass role).
#[derive(Debug, Clone, Default)]
pub(crate) struct Role {
    /// It exists.
    pub(crate) exists: bool,
    /// LOGIN.
    pub(crate) login: bool,
    /// SUPERUSER.
    pub(crate) superuser: bool,
    /// BYPASSRLS.
    pub(crate) bypassrls: bool,
    /// CREATEDB.
    pub(crate) createdb: bool,
    /// CREATEROLE.
    pub(crate) createrole: bool,
    /// REPLICATION.
    pub(crate) replication: bool,
    /// USAGE on the tenant schema (directly or through PUBLIC; for a role that
    /// does not exist yet, what PUBLIC has).
    pub(crate) schema_usage: bool,
    /// CONNECT on the database (likewise).
    pub(crate) connect: bool,
    /// The session holds ADMIN OPTION on it (on PostgreSQL 16+ what CREATEROLE
    /// needs to alter, grant or drop a role).
    pub(crate) session_is_admin: bool,
    /// The session has its privileges (an inheriting member, or the role itself).
    pub(crate) session_inherits: bool,
    /// A member of RDS's `rds_iam`: it logs in with an IAM auth token only.
    pub(crate) iam: bool,
    /// Its settings for every database (`ALTER ROLE ... SET`), as `name=value`.
    pub(crate) settings: Vec<String>,
}

impl Role {
    /// Whether its settings for every database hold `name` = `value`
    /// (compared case-insensitively, quotes aside).
    pub(crate) fn has_setting(&self, name: &str, value: &str) -> bool {
        self.settings.iter().any(|s| {
            s.split_once('=').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case(name)
                    && v.trim().trim_matches('\'').eq_ignore_ascii_case(value)
            })
        })
    }
}

/// A per-role setting (`ALTER ROLE ... SET name = value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoleSetting {
    /// The parameter.
    pub(crate) name: &'static str,
    /// Its value.
    pub(crate) value: &'static str,
}

impl std::fmt::Display for RoleSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// What the app role reaches beyond its own grants.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppReach {
    /// The app role itself, or roles it reaches, that have CREATEROLE.
    pub(crate) createrole_roles: Vec<CreateroleRole>,
    /// Role-, database- or server-level defaults of the tenant setting: "scope: setting=value".
    pub(crate) setting_defaults: Vec<String>,
    /// Default privileges that will grant the app role (or PUBLIC) TRUNCATE,
    /// REFERENCES or TRIGGER, or PUBLIC SELECT, on tables created later.
    pub(crate) default_privileges: Vec<String>,
    /// Default privileges that will grant the app role SELECT on tables
    /// created later ("app_user for objects of owner [in schema s]").
    pub(crate) default_select: Vec<String>,
    /// For an app role apply is yet to create: the other tables and views of
    /// the tenant schema it will not be able to read (bare names).
    pub(crate) unreadable_by_new_app: Vec<String>,
}

/// A role with CREATEROLE that the app role is or reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CreateroleRole {
    /// The role with CREATEROLE.
    pub(crate) name: String,
    /// The role granted to the app role on the way to it; `None` when it is
    /// the app role itself.
    pub(crate) granted: Option<String>,
}
