//! What the database looks like now, as far as the bundle is concerned: read
//! with a fixed number of catalog queries, whatever the number of tables.

use anyhow::Result;

use super::sql;
use crate::config::{Target, BUNDLE_SCHEMA, POLICY_NAME};
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
    /// BYPASSRLS.
    pub bypassrls: bool,
    /// CREATE on the database (needed for the rlsctl schema).
    pub can_create_schema: bool,
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
}

const SESSION_SQL: &str = "\
SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolbypassrls,
       has_database_privilege(current_database(), 'CREATE'),
       current_setting('server_version_num')::int,
       ARRAY(SELECT b.rolname::text FROM pg_roles b WHERE b.rolsuper OR b.rolbypassrls ORDER BY 1)
FROM pg_roles r WHERE r.rolname = current_user";

const ROLES_SQL: &str = "\
SELECT r.rolname::text, r.rolcanlogin, r.rolsuper, r.rolbypassrls, r.rolcreatedb, r.rolcreaterole, r.rolreplication,
       coalesce(has_schema_privilege(r.oid, (SELECT oid FROM pg_namespace WHERE nspname = $2), 'USAGE'), false),
       has_database_privilege(r.oid, (SELECT oid FROM pg_database WHERE datname = current_database()), 'CONNECT')
FROM pg_roles r WHERE r.rolname = ANY($1::text[])";

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
               AND d.deptype IN ('a', 'i') ORDER BY s.oid)
FROM wanted w
LEFT JOIN pg_namespace n ON n.nspname = $1
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = $6
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

/// The helper function's body exactly as the bundle writes it (what `prosrc` holds).
pub fn helper_body() -> String {
    let helper = sql::render("helper", &[("app_role", "x"), ("admin_role", "x")]);
    helper
        .split("$body$")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Reads the state with five catalog queries (six when the registry exists).
pub async fn read(db: &Db, target: &Target) -> Result<State> {
    let row = db
        .query_one(SESSION_SQL, &[])
        .await
        .doing("reading the session's privileges")?;
    let session = Session {
        user: row.get(0),
        superuser: row.get(1),
        createrole: row.get(2),
        bypassrls: row.get(3),
        can_create_schema: row.get(4),
        server_version_num: row.get(5),
    };
    let bypass_roles: Vec<String> = row.get(6);

    let names = vec![target.app_role.clone(), target.admin_role.clone()];
    let mut app = Role::default();
    let mut admin = Role::default();
    for row in db
        .query(ROLES_SQL, &[&names, &target.schema])
        .await
        .doing("reading roles")?
    {
        let name: String = row.get(0);
        let role = Role {
            exists: true,
            login: row.get(1),
            superuser: row.get(2),
            bypassrls: row.get(3),
            createdb: row.get(4),
            createrole: row.get(5),
            replication: row.get(6),
            schema_usage: row.get(7),
            connect: row.get(8),
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
                policy: row.get::<_, bool>(12).then(|| Policy {
                    cmd: row.get(13),
                    permissive: row.get(14),
                    roles: row.get(15),
                    using: row.get(16),
                    check: row.get(17),
                }),
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
    Ok(State {
        session,
        app,
        admin,
        tables,
        bundle,
        bypass_roles,
    })
}
