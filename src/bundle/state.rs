//! What the database looks like now, as far as the bundle is concerned: read
//! with a fixed number of catalog queries, whatever the number of tables.

use anyhow::Result;

use super::sql;
use crate::config::{Target, ADMIN_POLICY_NAME, BUNDLE_SCHEMA, POLICY_NAME};
use crate::db::{Db, DbResultExt};

/// The connected user's powers.
#[derive(Debug, Clone)]
pub struct Session {
    /// `current_user`.
    pub user: String,
    /// Superuser.
    pub superuser: bool,
    /// CREATEROLE.
    pub createrole: bool,
    /// CREATEDB.
    pub createdb: bool,
    /// REPLICATION.
    pub replication: bool,
    /// BYPASSRLS.
    pub bypassrls: bool,
    /// CREATE on the database (needed for the rlsctl schema).
    pub can_create_schema: bool,
    /// May grant USAGE on the tenant schema (owns it, or holds it WITH GRANT OPTION).
    pub can_grant_schema_usage: bool,
    /// `server_version_num`.
    pub server_version_num: i32,
}

/// A role the bundle manages.
#[derive(Debug, Clone, Default)]
pub struct Role {
    /// Whether it exists.
    pub exists: bool,
    /// LOGIN.
    pub login: bool,
    /// SUPERUSER.
    pub superuser: bool,
    /// BYPASSRLS.
    pub bypassrls: bool,
    /// CREATEDB.
    pub createdb: bool,
    /// CREATEROLE.
    pub createrole: bool,
    /// REPLICATION.
    pub replication: bool,
    /// USAGE on the tenant schema (directly or through PUBLIC).
    pub schema_usage: bool,
    /// CONNECT on the database (directly or through PUBLIC).
    pub connect: bool,
    /// The session holds ADMIN OPTION on it (on PostgreSQL 16+ what CREATEROLE
    /// needs to alter, grant or drop a role).
    pub session_is_admin: bool,
    /// The session has its privileges (an inheriting member, or the role itself).
    pub session_inherits: bool,
}

/// The isolation policy as installed.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `polcmd` (`*` for ALL).
    pub cmd: String,
    /// PERMISSIVE.
    pub permissive: bool,
    /// Role names (`public` for PUBLIC).
    pub roles: Vec<String>,
    /// `pg_get_expr(polqual)`.
    pub using: Option<String>,
    /// `pg_get_expr(polwithcheck)`.
    pub check: Option<String>,
}

/// A sequence owned by a column of a tenant table.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Whether the app role can use it.
    pub app_usage: bool,
}

/// One configured tenant table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Name as configured.
    pub name: String,
    /// Whether a table (or partitioned table) of that name exists.
    pub exists: bool,
    /// Whether it has the tenant column.
    pub has_column: bool,
    /// The column's type without modifiers, as `format_type` writes it.
    pub column_type: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Whether the current user owns it (or is a member of its owner).
    pub owned_by_session: bool,
    /// relrowsecurity.
    pub rls: bool,
    /// relforcerowsecurity.
    pub force: bool,
    /// A btree index whose first column is the tenant column.
    pub has_tenant_index: bool,
    /// Privileges granted to PUBLIC.
    pub public_privileges: Vec<String>,
    /// Privileges granted directly to the app role.
    pub app_privileges: Vec<String>,
    /// Privileges granted directly to the break-glass role.
    pub admin_privileges: Vec<String>,
    /// The isolation policy, if present.
    pub policy: Option<Policy>,
    /// The break-glass role's policy, if present.
    pub admin_policy: Option<Policy>,
    /// The session sees every row (RLS off, it bypasses RLS, or a policy
    /// `USING (true)` applies to it and nothing restrictive): its counts are real.
    pub session_sees_all: bool,
    /// Sequences owned by its columns.
    pub sequences: Vec<Sequence>,
}

/// The bundle's own schema.
#[derive(Debug, Clone, Default)]
pub struct BundleSchema {
    /// The schema and its three tables exist.
    pub tables_exist: bool,
    /// The helper function's source, security and settings are as the bundle writes them.
    pub helper_current: bool,
    /// The app role can read the bundle tables and run the helper.
    pub app_grants: bool,
    /// Registry rows: (table, tenant column).
    pub registry: Vec<(String, String)>,
}

/// Everything `apply` needs to know, read in one go.
#[derive(Debug, Clone)]
pub struct State {
    /// The connected user.
    pub session: Session,
    /// The app role.
    pub app: Role,
    /// The break-glass role.
    pub admin: Role,
    /// Configured tables, in order.
    pub tables: Vec<Table>,
    /// The rlsctl schema.
    pub bundle: BundleSchema,
    /// Roles that can bypass RLS right now (superuser or BYPASSRLS).
    pub bypass_roles: Vec<String>,
    /// LOGIN roles that read tenant tables today and will see no rows once
    /// RLS is forced (no policy applies to them): (role, tables).
    pub losing_readers: Vec<(String, Vec<String>)>,
}

const SESSION_SQL: &str = "\
SELECT r.rolname::text AS name, r.rolsuper AS superuser, r.rolcreaterole AS createrole, r.rolcreatedb AS createdb,
       r.rolreplication AS replication, r.rolbypassrls AS bypassrls,
       has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
       coalesce((SELECT pg_has_role(n.nspowner, 'USAGE') OR has_schema_privilege(n.oid, 'USAGE WITH GRANT OPTION')
                 FROM pg_namespace n WHERE n.nspname = $1), false) AS can_grant_schema_usage,
       coalesce(has_schema_privilege('public', (SELECT oid FROM pg_namespace WHERE nspname = $1), 'USAGE'), false)
           AS public_schema_usage,
       has_database_privilege('public', current_database(), 'CONNECT') AS public_connect,
       current_setting('server_version_num')::int AS server_version_num,
       ARRAY(SELECT b.rolname::text FROM pg_roles b WHERE b.rolsuper OR b.rolbypassrls ORDER BY 1) AS bypass_roles
FROM pg_roles r WHERE r.rolname = current_user";

const ROLES_SQL: &str = "\
SELECT r.rolname::text AS name, r.rolcanlogin AS login, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
       r.rolcreatedb AS createdb, r.rolcreaterole AS createrole, r.rolreplication AS replication,
       coalesce(has_schema_privilege(r.oid, (SELECT oid FROM pg_namespace WHERE nspname = $2), 'USAGE'), false) AS schema_usage,
       has_database_privilege(r.oid, (SELECT oid FROM pg_database WHERE datname = current_database()), 'CONNECT') AS connect,
       pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION') AS session_is_admin,
       pg_has_role(r.oid, 'USAGE') AS session_inherits
FROM pg_roles r WHERE r.rolname = ANY($1::text[])";

/// LOGIN roles other than the bundle's and the session's that can SELECT a
/// tenant table now and have no way past RLS (superuser, BYPASSRLS, the
/// break-glass role's privileges): after FORCE they read nothing.
const LOSING_READERS_SQL: &str = "\
WITH tenant AS (SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p')),
     admin AS (SELECT oid FROM pg_roles WHERE rolname = $4)
SELECT r.rolname::text AS role,
       ARRAY(SELECT t.relname::text FROM tenant t WHERE has_table_privilege(r.oid, t.oid, 'SELECT') ORDER BY 1) AS tables
FROM pg_roles r
WHERE r.rolcanlogin AND NOT r.rolsuper AND NOT r.rolbypassrls AND r.rolname NOT IN ($3, $4) AND r.rolname <> current_user
  AND NOT coalesce((SELECT pg_has_role(r.oid, admin.oid, 'USAGE') FROM admin), false)
  AND EXISTS (SELECT 1 FROM tenant t WHERE has_table_privilege(r.oid, t.oid, 'SELECT'))
ORDER BY 1";

const TABLES_SQL: &str = "\
WITH wanted AS (SELECT w.name, w.ord FROM unnest($2::text[]) WITH ORDINALITY AS w(name, ord)),
     roles AS (SELECT (SELECT oid FROM pg_roles WHERE rolname = $4) AS app, (SELECT oid FROM pg_roles WHERE rolname = $5) AS admin)
SELECT w.name, c.oid IS NOT NULL, a.attnum IS NOT NULL, format_type(a.atttypid, NULL),
       pg_get_userbyid(c.relowner)::text, coalesce(pg_has_role(c.relowner, 'USAGE'), false),
       coalesce(c.relrowsecurity, false), coalesce(c.relforcerowsecurity, false),
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
               WHERE i.indrelid = c.oid AND am.amname = 'btree' AND i.indkey[0] = a.attnum),
       ARRAY(SELECT x.privilege_type::text FROM aclexplode(c.relacl) x WHERE x.grantee = 0 ORDER BY 1),
       ARRAY(SELECT x.privilege_type::text FROM aclexplode(c.relacl) x, roles WHERE x.grantee = roles.app ORDER BY 1),
       ARRAY(SELECT x.privilege_type::text FROM aclexplode(c.relacl) x, roles WHERE x.grantee = roles.admin ORDER BY 1),
       p.polname IS NOT NULL, p.polcmd::text, coalesce(p.polpermissive, true),
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END FROM unnest(p.polroles) r ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
       ARRAY(SELECT sn.nspname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_namespace sn ON sn.oid = s.relnamespace
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
               AND d.deptype IN ('a', 'i') ORDER BY s.oid),
       ARRAY(SELECT s.relname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
               AND d.deptype IN ('a', 'i') ORDER BY s.oid),
       ARRAY(SELECT coalesce(has_sequence_privilege(roles.app, s.oid, 'USAGE'), false) FROM roles, pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
               AND d.deptype IN ('a', 'i') ORDER BY s.oid),
       ap.polname IS NOT NULL, ap.polcmd::text, coalesce(ap.polpermissive, true),
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END FROM unnest(ap.polroles) r ORDER BY 1),
       pg_get_expr(ap.polqual, ap.polrelid), pg_get_expr(ap.polwithcheck, ap.polrelid),
       coalesce(has_table_privilege(c.oid, 'SELECT') AND (NOT c.relrowsecurity
                OR (pg_has_role(c.relowner, 'USAGE') AND NOT c.relforcerowsecurity)
                OR (SELECT me.rolsuper OR me.rolbypassrls FROM pg_roles me WHERE me.rolname = current_user)
                OR (EXISTS (SELECT 1 FROM pg_policy op, unnest(op.polroles) r
                            WHERE op.polrelid = c.oid AND op.polpermissive AND op.polcmd IN ('*', 'r')
                              AND (r = 0 OR pg_has_role(r, 'USAGE')) AND pg_get_expr(op.polqual, op.polrelid) = 'true')
                    AND NOT EXISTS (SELECT 1 FROM pg_policy rp, unnest(rp.polroles) r
                                    WHERE rp.polrelid = c.oid AND NOT rp.polpermissive AND rp.polcmd IN ('*', 'r')
                                      AND (r = 0 OR pg_has_role(r, 'USAGE'))))), false)
FROM wanted w
LEFT JOIN pg_namespace n ON n.nspname = $1
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = $6
LEFT JOIN pg_policy ap ON ap.polrelid = c.oid AND ap.polname = $7
ORDER BY w.ord";

const BUNDLE_SQL: &str = "\
WITH app AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     admin AS (SELECT oid FROM pg_roles WHERE rolname = $2),
     helper AS (SELECT p.* FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'rlsctl' AND p.proname = 'null_tenant_counts' AND p.pronargs = 0)
SELECT to_regclass('rlsctl.bundle_history') IS NOT NULL AND to_regclass('rlsctl.tenant_tables') IS NOT NULL
           AND to_regclass('rlsctl.break_glass_log') IS NOT NULL,
       (SELECT h.prosrc = $3 AND h.prosecdef AND h.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
               AND h.proowner = (SELECT oid FROM admin) FROM helper h),
       coalesce((SELECT has_function_privilege(app.oid, h.oid, 'EXECUTE') FROM helper h, app), false)
           AND coalesce((SELECT has_table_privilege(app.oid, to_regclass('rlsctl.break_glass_log'), 'SELECT')
                         AND has_table_privilege(app.oid, to_regclass('rlsctl.tenant_tables'), 'SELECT')
                         AND has_table_privilege(app.oid, to_regclass('rlsctl.bundle_history'), 'SELECT')
                         AND has_schema_privilege(app.oid, 'rlsctl', 'USAGE') FROM app), false)";

/// The placeholders of the helper step other than the roles.
pub fn helper_values<'a>(app: &'a str, admin: &'a str, policy: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("app_role", app),
        ("admin_role", admin),
        ("admin_policy", policy),
    ]
}

/// The helper function's body exactly as the bundle writes it (what `prosrc` holds).
pub fn helper_body() -> String {
    let policy = crate::db::quote_literal(ADMIN_POLICY_NAME);
    let helper = sql::render("helper", &helper_values("x", "x", &policy));
    helper
        .split("$body$")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Reads the state with six catalog queries (seven when the registry exists).
pub async fn read(db: &Db, target: &Target) -> Result<State> {
    let row = db
        .query_one(SESSION_SQL, &[&target.schema])
        .await
        .doing("reading the session's privileges")?;
    let session = Session {
        user: row.get("name"),
        superuser: row.get("superuser"),
        createrole: row.get("createrole"),
        createdb: row.get("createdb"),
        replication: row.get("replication"),
        bypassrls: row.get("bypassrls"),
        can_create_schema: row.get("can_create_schema"),
        can_grant_schema_usage: row.get("can_grant_schema_usage"),
        server_version_num: row.get("server_version_num"),
    };
    let bypass_roles: Vec<String> = row.get("bypass_roles");

    // A role created now gets what PUBLIC has: no grant is needed for that.
    let new_role = Role {
        schema_usage: row.get("public_schema_usage"),
        connect: row.get("public_connect"),
        ..Role::default()
    };
    let names = vec![target.app_role.clone(), target.admin_role.clone()];
    let mut app = new_role.clone();
    let mut admin = new_role;
    for row in db
        .query(ROLES_SQL, &[&names, &target.schema])
        .await
        .doing("reading roles")?
    {
        let name: String = row.get("name");
        let role = Role {
            exists: true,
            login: row.get("login"),
            superuser: row.get("superuser"),
            bypassrls: row.get("bypassrls"),
            createdb: row.get("createdb"),
            createrole: row.get("createrole"),
            replication: row.get("replication"),
            schema_usage: row.get("schema_usage"),
            connect: row.get("connect"),
            session_is_admin: row.get("session_is_admin"),
            session_inherits: row.get("session_inherits"),
        };
        if name == target.app_role {
            app = role;
        } else {
            admin = role;
        }
    }

    let rows = db
        .query(
            TABLES_SQL,
            &[
                &target.schema,
                &target.tables,
                &target.tenant_column,
                &target.app_role,
                &target.admin_role,
                &POLICY_NAME,
                &ADMIN_POLICY_NAME,
            ],
        )
        .await
        .doing("reading the tenant tables")?;
    let tables = rows
        .iter()
        .map(|row| {
            let seq_schemas: Vec<String> = row.get(18);
            let seq_names: Vec<String> = row.get(19);
            let seq_usage: Vec<bool> = row.get(20);
            Table {
                name: row.get(0),
                exists: row.get(1),
                has_column: row.get(2),
                column_type: row.get(3),
                owner: row.get(4),
                owned_by_session: row.get(5),
                rls: row.get(6),
                force: row.get(7),
                has_tenant_index: row.get(8),
                public_privileges: row.get(9),
                app_privileges: row.get(10),
                admin_privileges: row.get(11),
                policy: policy_at(row, 12),
                admin_policy: policy_at(row, 21),
                session_sees_all: row.get(27),
                sequences: seq_schemas
                    .into_iter()
                    .zip(seq_names)
                    .zip(seq_usage)
                    .map(|((schema, name), app_usage)| Sequence {
                        schema,
                        name,
                        app_usage,
                    })
                    .collect(),
            }
        })
        .collect();

    let row = db
        .query_one(
            BUNDLE_SQL,
            &[&target.app_role, &target.admin_role, &helper_body()],
        )
        .await
        .doing("reading the rlsctl schema")?;
    let mut bundle = BundleSchema {
        tables_exist: row.get(0),
        helper_current: row.get::<_, Option<bool>>(1).unwrap_or(false),
        app_grants: row.get(2),
        registry: Vec::new(),
    };
    if bundle.tables_exist {
        bundle.registry = db
            .query(
                &format!("SELECT table_name, tenant_column FROM {BUNDLE_SCHEMA}.tenant_tables WHERE schema_name = $1 ORDER BY 1"),
                &[&target.schema],
            )
            .await
            .doing("reading the installed-table registry")?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    }
    let losing_readers = db
        .query(
            LOSING_READERS_SQL,
            &[
                &target.schema,
                &target.tables,
                &target.app_role,
                &target.admin_role,
            ],
        )
        .await
        .doing("reading who reads the tenant tables today")?
        .iter()
        .map(|r| (r.get("role"), r.get("tables")))
        .collect();
    Ok(State {
        session,
        app,
        admin,
        tables,
        bundle,
        bypass_roles,
        losing_readers,
    })
}

/// The policy whose six columns start at `at` (present, cmd, permissive, roles, USING, WITH CHECK).
fn policy_at(row: &tokio_postgres::Row, at: usize) -> Option<Policy> {
    row.get::<_, bool>(at).then(|| Policy {
        cmd: row.get(at + 1),
        permissive: row.get(at + 2),
        roles: row.get(at + 3),
        using: row.get(at + 4),
        check: row.get(at + 5),
    })
}
