//! Catalog checks: everything is read by [`Snapshot::read`] with a fixed
//! number of queries (ten at most, whatever the number of tables), then each
//! check is a pure function of the snapshot.

use anyhow::{bail, Result};

use super::{Finding, Findings, *};
use crate::bundle::policy::scopes_to_tenant;
use crate::bundle::state::helper_body;
use crate::config::Target;
use crate::db::{qualified, quote_ident, quote_literal, Db, DbResultExt};

/// The connected session.
#[derive(Debug, Clone)]
pub struct Session {
    /// `session_user`.
    pub user: String,
    /// Superuser.
    pub superuser: bool,
    /// BYPASSRLS.
    pub bypassrls: bool,
    /// `server_version_num`.
    pub server_version_num: i32,
    /// Every role that is superuser or BYPASSRLS now.
    pub bypass_roles: Vec<String>,
}

/// The app role as the catalog describes it.
#[derive(Debug, Clone, Default)]
pub struct AppRole {
    /// It exists.
    pub exists: bool,
    /// Superuser.
    pub superuser: bool,
    /// BYPASSRLS.
    pub bypassrls: bool,
    /// Roles it reaches through membership (transitively) that are superuser or
    /// BYPASSRLS, or the break-glass role (whose policy reaches every row).
    pub bypass_memberships: Vec<String>,
    /// Role- or database-level defaults of the tenant setting: "scope: setting=value".
    pub setting_defaults: Vec<String>,
}

/// A configured tenant table.
#[derive(Debug, Clone)]
pub struct TenantTable {
    /// Name as configured.
    pub name: String,
    /// `schema.table` for display.
    pub display: String,
    /// Exists (as a table or partitioned table).
    pub exists: bool,
    /// Has the tenant column.
    pub has_column: bool,
    /// The column's type, as `format_type` writes it.
    pub column_type: Option<String>,
    /// relrowsecurity.
    pub rls: bool,
    /// relforcerowsecurity.
    pub force: bool,
    /// Owner.
    pub owner: Option<String>,
    /// The app role owns it or is a member of its owner.
    pub app_owns: bool,
    /// The session user owns it or is a member of its owner.
    pub session_owns: bool,
    /// A btree index led by the tenant column.
    pub has_tenant_index: bool,
    /// TRUNCATE / REFERENCES / TRIGGER the app role holds (directly, by membership or PUBLIC).
    pub app_forbidden_privileges: Vec<String>,
}

/// A policy on a tenant table, a child of one, or a table with the tenant column.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    /// `schema.table` of the table.
    pub table: String,
    /// Policy name.
    pub name: String,
    /// `r`, `a`, `w`, `d` or `*`.
    pub cmd: String,
    /// PERMISSIVE (else RESTRICTIVE).
    pub permissive: bool,
    /// It applies to the app role (directly, through membership, or PUBLIC).
    pub applies_to_app: bool,
    /// USING.
    pub using: Option<String>,
    /// WITH CHECK.
    pub check: Option<String>,
}

/// A view, materialized view or foreign table readable by the app role.
#[derive(Debug, Clone)]
pub struct Relation {
    /// `schema.name`.
    pub name: String,
    /// `v`, `m` or `f`.
    pub relkind: String,
    /// Owner.
    pub owner: String,
    /// The owner bypasses RLS on what it reads (superuser, BYPASSRLS, or owner of an unforced base table).
    pub owner_bypasses: bool,
    /// `security_invoker` is set (PostgreSQL 15+).
    pub security_invoker: bool,
    /// The tenant tables it reads (empty for foreign tables).
    pub reads: Vec<String>,
}

/// A SECURITY DEFINER or LEAKPROOF function.
#[derive(Debug, Clone)]
pub struct Function {
    /// `schema.name(args)`.
    pub signature: String,
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// SECURITY DEFINER.
    pub security_definer: bool,
    /// LEAKPROOF.
    pub leakproof: bool,
    /// Has a `search_path` setting.
    pub pins_search_path: bool,
    /// The app role may execute it.
    pub app_can_execute: bool,
    /// Its source.
    pub source: String,
}

/// A partition or inheritance child of a tenant table.
#[derive(Debug, Clone)]
pub struct Child {
    /// `schema.name`.
    pub name: String,
    /// `schema.name` of the tenant table it descends from.
    pub parent: String,
    /// relrowsecurity.
    pub rls: bool,
    /// relforcerowsecurity.
    pub force: bool,
}

/// What the bundle recorded, if it is installed and readable.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// The rlsctl schema and its tables exist.
    pub installed: bool,
    /// Registry rows: (table, tenant column, installed USING, installed WITH CHECK).
    pub registry: Vec<(String, String, String, String)>,
    /// Bypass roles recorded by the last apply.
    pub recorded_bypass_roles: Option<Vec<String>>,
    /// When and by whom the last apply ran.
    pub last_apply: Option<String>,
    /// Open break-glass entries: (tables, started_by, started_at, reason).
    pub open_break_glass: Vec<(Vec<String>, String, String, String)>,
    /// NULL tenant counts from the helper: (table, count or None when unknown).
    pub null_counts: Option<Vec<(String, Option<i64>)>>,
}

/// Everything the catalog and drift checks look at.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The session.
    pub session: Session,
    /// The app role.
    pub app: AppRole,
    /// Configured tables in order.
    pub tables: Vec<TenantTable>,
    /// Policies on tenant tables, their children and uncovered tenant-column tables.
    pub policies: Vec<PolicyRow>,
    /// Index of `policies` by table (`schema.table`), so per-table lookups stay linear overall.
    policies_by_table: std::collections::HashMap<String, Vec<usize>>,
    /// Tables in the schema with the tenant column that are not configured, and
    /// whether RLS is enabled and forced on them all the same.
    pub uncovered: Vec<(String, bool)>,
    /// Views, materialized views and foreign tables readable by the app role.
    pub relations: Vec<Relation>,
    /// SECURITY DEFINER and LEAKPROOF functions outside the system schemas.
    pub functions: Vec<Function>,
    /// Children of tenant tables.
    pub children: Vec<Child>,
    /// The bundle's records.
    pub bundle: Bundle,
}

const SESSION_SQL: &str = "\
SELECT session_user::text, r.rolsuper, r.rolbypassrls, current_setting('server_version_num')::int,
       ARRAY(SELECT b.rolname::text FROM pg_roles b WHERE b.rolsuper OR b.rolbypassrls ORDER BY 1)
FROM pg_roles r WHERE r.rolname = session_user";

const APP_ROLE_SQL: &str = "\
WITH RECURSIVE app AS (SELECT oid, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1),
reach(oid, path) AS (
    SELECT m.roleid, ARRAY[m.roleid] FROM pg_auth_members m, app WHERE m.member = app.oid
    UNION ALL
    SELECT m.roleid, r.path || m.roleid FROM pg_auth_members m JOIN reach r ON m.member = r.oid
    WHERE NOT m.roleid = ANY(r.path))
SELECT EXISTS (SELECT 1 FROM app), coalesce((SELECT rolsuper FROM app), false), coalesce((SELECT rolbypassrls FROM app), false),
       ARRAY(SELECT DISTINCT g.rolname::text FROM reach JOIN pg_roles g ON g.oid = reach.oid
             WHERE g.rolsuper OR g.rolbypassrls OR g.rolname = $3 ORDER BY 1),
       ARRAY(SELECT CASE WHEN s.setrole = 0 THEN 'database ' || coalesce(d.datname::text, '?')
                         ELSE 'role ' || pg_get_userbyid(s.setrole)::text
                              || CASE WHEN s.setdatabase = 0 THEN '' ELSE ' in database ' || coalesce(d.datname::text, '?') END
                    END || ': ' || c
             FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
             WHERE c LIKE $2 || '=%'
               AND (s.setrole = (SELECT oid FROM app) OR s.setrole = 0)
               AND (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
             ORDER BY 1)";

const TABLES_SQL: &str = "\
WITH wanted AS (SELECT w.name, w.ord FROM unnest($2::text[]) WITH ORDINALITY AS w(name, ord)),
     app AS (SELECT oid FROM pg_roles WHERE rolname = $4)
SELECT w.name, c.oid IS NOT NULL, a.attnum IS NOT NULL, format_type(a.atttypid, NULL),
       coalesce(c.relrowsecurity, false), coalesce(c.relforcerowsecurity, false), pg_get_userbyid(c.relowner)::text,
       coalesce((SELECT pg_has_role(app.oid, c.relowner, 'MEMBER') FROM app), false),
       coalesce(pg_has_role(session_user, c.relowner, 'MEMBER'), false),
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
               WHERE i.indrelid = c.oid AND am.amname = 'btree' AND i.indkey[0] = a.attnum),
       c.oid,
       CASE WHEN (SELECT has_table_privilege(app.oid, c.oid, 'TRUNCATE, REFERENCES, TRIGGER') FROM app)
            THEN ARRAY(SELECT p FROM unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) p, app WHERE has_table_privilege(app.oid, c.oid, p))
            ELSE '{}' END
FROM wanted w
LEFT JOIN pg_namespace n ON n.nspname = $1
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY w.ord";

/// Tenant tables' oids, their inheritance descendants, and uncovered tenant-column tables.
const SCOPE_CTE: &str = "\
WITH RECURSIVE tenant AS (SELECT unnest($4::oid[]) AS oid),
kids(oid, parent, path) AS (
    SELECT i.inhrelid, i.inhparent, ARRAY[i.inhrelid] FROM pg_inherits i WHERE i.inhparent IN (SELECT oid FROM tenant)
    UNION ALL
    SELECT i.inhrelid, k.parent, k.path || i.inhrelid FROM pg_inherits i JOIN kids k ON i.inhparent = k.oid
    WHERE NOT i.inhrelid = ANY(k.path)),
with_column AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition),
app AS (SELECT oid FROM pg_roles WHERE rolname = $3)";

const UNCOVERED_SQL: &str = "\
SELECT format('%s.%s', n.nspname, c.relname), c.relrowsecurity AND c.relforcerowsecurity
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid IN (SELECT oid FROM with_column) AND c.oid NOT IN (SELECT oid FROM tenant) ORDER BY 1";

/// Policies with their expressions deparsed. Deparsing costs a relation open per
/// expression, so with the bundle's registry at hand a policy whose stored tree
/// is unchanged since apply reuses the text apply recorded.
fn policies_sql(with_registry: bool) -> String {
    let (using, check, join) = if with_registry {
        (
            "CASE WHEN tt.installed_using_tree = p.polqual::text THEN tt.installed_using ELSE pg_get_expr(p.polqual, p.polrelid) END",
            "CASE WHEN tt.installed_check_tree = p.polwithcheck::text THEN tt.installed_check ELSE pg_get_expr(p.polwithcheck, p.polrelid) END",
            "LEFT JOIN rlsctl.tenant_tables tt ON tt.schema_name = n.nspname AND tt.table_name = c.relname AND p.polname = 'tenant_isolation'",
        )
    } else {
        (
            "pg_get_expr(p.polqual, p.polrelid)",
            "pg_get_expr(p.polwithcheck, p.polrelid)",
            "",
        )
    };
    format!(
        "{SCOPE_CTE}
SELECT format('%s.%s', n.nspname, c.relname), p.polname::text, p.polcmd::text, p.polpermissive,
       EXISTS (SELECT 1 FROM unnest(p.polroles) r, app WHERE r = 0 OR pg_has_role(app.oid, r, 'MEMBER')),
       {using}, {check}
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace {join}
WHERE n.nspname = $1 OR p.polrelid IN (SELECT oid FROM kids)
ORDER BY 1, 2"
    )
}

const CHILDREN_SQL: &str = "\
SELECT DISTINCT format('%s.%s', cn.nspname, c.relname), format('%s.%s', pn.nspname, p.relname), c.relrowsecurity, c.relforcerowsecurity
FROM kids k JOIN pg_class c ON c.oid = k.oid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = k.parent JOIN pg_namespace pn ON pn.oid = p.relnamespace
ORDER BY 1";

const RELATIONS_SQL: &str = "\
, deps(view_oid, base_oid, path) AS (
    SELECT r.ev_class, d.refobjid, ARRAY[r.ev_class]
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid IN (SELECT oid FROM tenant UNION SELECT oid FROM kids) AND r.ev_class <> d.refobjid
    UNION ALL
    SELECT r.ev_class, deps.base_oid, deps.path || r.ev_class
    FROM deps JOIN pg_depend d ON d.refobjid = deps.view_oid AND d.classid = 'pg_rewrite'::regclass
              AND d.refclassid = 'pg_class'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> deps.view_oid AND NOT r.ev_class = ANY(deps.path)),
readers AS (
    SELECT view_oid AS oid, array_agg(DISTINCT base_oid) AS bases FROM deps GROUP BY 1
    UNION ALL
    SELECT c.oid, '{}'::oid[] FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2
    WHERE c.relkind = 'f')
SELECT format('%s.%s', n.nspname, v.relname), v.relkind::text, o.rolname::text,
       o.rolsuper OR o.rolbypassrls OR EXISTS (SELECT 1 FROM pg_class b WHERE b.oid = ANY(x.bases)
                                                AND pg_has_role(v.relowner, b.relowner, 'MEMBER') AND NOT b.relforcerowsecurity),
       coalesce((SELECT lower(option_value) IN ('true', 'on', '1', 'yes') FROM pg_options_to_table(v.reloptions)
                 WHERE option_name = 'security_invoker'), false),
       ARRAY(SELECT format('%s.%s', bn.nspname, b.relname) FROM pg_class b JOIN pg_namespace bn ON bn.oid = b.relnamespace
             WHERE b.oid = ANY(x.bases) ORDER BY 1)
FROM readers x JOIN pg_class v ON v.oid = x.oid JOIN pg_namespace n ON n.oid = v.relnamespace JOIN pg_roles o ON o.oid = v.relowner, app
WHERE has_table_privilege(app.oid, v.oid, 'SELECT')
ORDER BY 1";

const FUNCTIONS_SQL: &str = "\
SELECT p.oid::regprocedure::text, n.nspname::text, p.proname::text, p.prosecdef, p.proleakproof,
       EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'),
       coalesce((SELECT has_function_privilege(r.oid, p.oid, 'EXECUTE') FROM pg_roles r WHERE r.rolname = $1), false),
       coalesce(p.prosrc, '')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND (p.prosecdef OR p.proleakproof)
ORDER BY 1";

const BUNDLE_PRESENT_SQL: &str = "\
SELECT to_regclass('rlsctl.tenant_tables') IS NOT NULL AND to_regclass('rlsctl.bundle_history') IS NOT NULL
           AND to_regclass('rlsctl.break_glass_log') IS NOT NULL,
       coalesce((SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = 'rlsctl'), false),
       to_regprocedure('rlsctl.null_tenant_counts()') IS NOT NULL
           AND coalesce(has_function_privilege(to_regprocedure('rlsctl.null_tenant_counts()'), 'EXECUTE'), false)";

const BUNDLE_RECORDS_SQL: &str = "\
SELECT 'registry', ARRAY[table_name, tenant_column, installed_using, installed_check]
FROM rlsctl.tenant_tables WHERE schema_name = $1
UNION ALL
(SELECT 'history', ARRAY[array_to_string(bypass_roles, ','), applied_by || ' at ' || applied_at::text]
 FROM rlsctl.bundle_history ORDER BY id DESC LIMIT 1)
UNION ALL
SELECT 'break-glass', ARRAY[array_to_string(ARRAY(SELECT schema_name || '.' || t FROM unnest(tables) t), ','),
                           started_by, started_at::text, reason]
FROM rlsctl.break_glass_log WHERE ended_at IS NULL AND action = 'disable'";

impl Snapshot {
    /// Reads the snapshot: at most ten statements, whatever the number of tables.
    pub async fn read(db: &Db, target: &Target) -> Result<Self> {
        let presence = Presence::read(db).await?;
        let scope: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
            &target.schema,
            &target.tables,
            &target.tenant_column,
            &target.app_role,
        ];
        let (uncovered_sql, policies_sql, children_sql, relations_sql) = (
            format!("{SCOPE_CTE} {UNCOVERED_SQL}"),
            policies_sql(presence.registry_readable()),
            format!("{SCOPE_CTE} {CHILDREN_SQL}"),
            format!("{SCOPE_CTE} {RELATIONS_SQL}"),
        );
        let app_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&target.app_role, &target.tenant_setting, &target.admin_role];
        let function_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&target.app_role];
        // Independent reads are pipelined on the one connection: the count of
        // statements is unchanged, but through a tunnel the round trips overlap.
        // The tenant tables come first so the later reads get their oids.
        let (session_row, app_row, table_rows, function_rows) = tokio::try_join!(
            db.query_one(SESSION_SQL, &[]),
            db.query_one(APP_ROLE_SQL, &app_params),
            db.query(TABLES_SQL, &scope),
            db.query(FUNCTIONS_SQL, &function_params),
        )
        .doing("reading the catalog")?;
        let oids: Vec<u32> = table_rows
            .iter()
            .filter_map(|r| r.get::<_, Option<u32>>(10))
            .collect();
        let related: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
            &target.schema,
            &target.tenant_column,
            &target.app_role,
            &oids,
        ];
        let (uncovered_rows, policy_rows, child_rows, relation_rows, bundle) = tokio::try_join!(
            async {
                db.query(&uncovered_sql, &related)
                    .await
                    .doing("reading tables with the tenant column")
            },
            async {
                db.query(&policies_sql, &related)
                    .await
                    .doing("reading policies")
            },
            async {
                db.query(&children_sql, &related)
                    .await
                    .doing("reading partitions and children")
            },
            async {
                db.query(&relations_sql, &related)
                    .await
                    .doing("reading views over tenant tables")
            },
            read_bundle(db, target, &presence),
        )?;
        let row = session_row;
        let session = Session {
            user: row.get(0),
            superuser: row.get(1),
            bypassrls: row.get(2),
            server_version_num: row.get(3),
            bypass_roles: row.get(4),
        };
        let row = app_row;
        let app = AppRole {
            exists: row.get(0),
            superuser: row.get(1),
            bypassrls: row.get(2),
            bypass_memberships: row.get(3),
            setting_defaults: row.get(4),
        };
        let tables = table_rows
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                TenantTable {
                    display: target.display_table(&name),
                    name,
                    exists: r.get(1),
                    has_column: r.get(2),
                    column_type: r.get(3),
                    rls: r.get(4),
                    force: r.get(5),
                    owner: r.get(6),
                    app_owns: r.get(7),
                    session_owns: r.get(8),
                    has_tenant_index: r.get(9),
                    app_forbidden_privileges: r.get(11),
                }
            })
            .collect();
        let uncovered = uncovered_rows
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let policies: Vec<PolicyRow> = policy_rows
            .iter()
            .map(|r| PolicyRow {
                table: r.get(0),
                name: r.get(1),
                cmd: r.get(2),
                permissive: r.get(3),
                applies_to_app: r.get(4),
                using: r.get(5),
                check: r.get(6),
            })
            .collect();
        let children = child_rows
            .iter()
            .map(|r| Child {
                name: r.get(0),
                parent: r.get(1),
                rls: r.get(2),
                force: r.get(3),
            })
            .collect();
        let relations = relation_rows
            .iter()
            .map(|r| Relation {
                name: r.get(0),
                relkind: r.get(1),
                owner: r.get(2),
                owner_bypasses: r.get(3),
                security_invoker: r.get(4),
                reads: r.get(5),
            })
            .collect();
        let functions = function_rows
            .iter()
            .map(|r| Function {
                signature: r.get(0),
                schema: r.get(1),
                name: r.get(2),
                security_definer: r.get(3),
                leakproof: r.get(4),
                pins_search_path: r.get(5),
                app_can_execute: r.get(6),
                source: r.get(7),
            })
            .collect();
        Ok(Self {
            session,
            app,
            tables,
            policies_by_table: index_by_table(&policies),
            policies,
            uncovered,
            relations,
            functions,
            children,
            bundle,
        })
    }

    /// The policies on one table (`schema.table`).
    pub fn policies_on<'a>(&'a self, table: &str) -> impl Iterator<Item = &'a PolicyRow> + 'a {
        self.policies_by_table
            .get(table)
            .into_iter()
            .flatten()
            .map(|&i| &self.policies[i])
    }

    /// Why this session would bypass RLS, if it would: then probes prove nothing.
    pub fn session_bypass_reason(&self) -> Option<String> {
        let s = &self.session;
        if s.superuser {
            return Some(format!(
                "connected as {}, a superuser, which bypasses RLS",
                s.user
            ));
        }
        if s.bypassrls {
            return Some(format!("connected as {}, which has BYPASSRLS", s.user));
        }
        let owned: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| t.exists && t.session_owns && !t.force)
            .map(|t| t.display.as_str())
            .collect();
        if !owned.is_empty() {
            return Some(format!(
                "connected as {}, which owns {} without FORCE ROW LEVEL SECURITY",
                s.user,
                owned.join(", ")
            ));
        }
        None
    }
}

/// Whether the bundle's schema is there and readable.
#[derive(Clone, Copy)]
struct Presence {
    installed: bool,
    usage: bool,
    helper: bool,
}

impl Presence {
    async fn read(db: &Db) -> Result<Self> {
        let row = db
            .query_one(BUNDLE_PRESENT_SQL, &[])
            .await
            .doing("looking for the rlsctl schema")?;
        Ok(Self {
            installed: row.get(0),
            usage: row.get(1),
            helper: row.get(2),
        })
    }

    fn registry_readable(&self) -> bool {
        self.installed && self.usage
    }
}

fn index_by_table(policies: &[PolicyRow]) -> std::collections::HashMap<String, Vec<usize>> {
    let mut index: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (i, p) in policies.iter().enumerate() {
        index.entry(p.table.clone()).or_default().push(i);
    }
    index
}

async fn read_bundle(db: &Db, target: &Target, presence: &Presence) -> Result<Bundle> {
    let Presence {
        installed,
        usage,
        helper,
    } = *presence;
    let mut bundle = Bundle {
        installed,
        ..Default::default()
    };
    if !installed {
        return Ok(bundle);
    }
    if !usage {
        bail!("the rlsctl schema exists but {} cannot read it (apply grants USAGE and SELECT to the app role)", db.info.user);
    }
    let helper_rows = async {
        if helper {
            let sql = "SELECT schema_name, table_name, null_rows FROM rlsctl.null_tenant_counts()";
            db.query(sql, &[]).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let schema: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&target.schema];
    let (records, helper_rows) =
        tokio::try_join!(db.query(BUNDLE_RECORDS_SQL, &schema), helper_rows)
            .doing("reading the bundle's records and NULL tenant counts")?;
    for row in records {
        let kind: String = row.get(0);
        let values: Vec<Option<String>> = row.get(1);
        let v = |i: usize| values.get(i).cloned().flatten().unwrap_or_default();
        match kind.as_str() {
            "registry" => bundle.registry.push((v(0), v(1), v(2), v(3))),
            "history" => {
                bundle.recorded_bypass_roles = Some(
                    v(0).split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                );
                bundle.last_apply = Some(v(1));
            }
            _ => bundle.open_break_glass.push((
                v(0).split(',').map(String::from).collect(),
                v(1),
                v(2),
                v(3),
            )),
        }
    }
    bundle.null_counts = helper_rows.map(|rows| {
        rows.iter()
            .map(|r| {
                (
                    format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1)),
                    r.get(2),
                )
            })
            .collect()
    });
    Ok(bundle)
}

/// Which write commands a policy governs.
fn writes(cmd: &str) -> bool {
    matches!(cmd, "*" | "a" | "w")
}

/// Runs the catalog checks. `session_check`: include ROLE001 (verify).
pub fn run(snap: &Snapshot, target: &Target, session_check: bool, findings: &mut Findings) {
    role_checks(snap, target, session_check, findings);
    coverage_checks(snap, target, findings);
    bypass_checks(snap, target, findings);
    performance_checks(snap, target, findings);
}

fn role_checks(snap: &Snapshot, target: &Target, session_check: bool, findings: &mut Findings) {
    let app = &target.app_role;
    if session_check {
        let mut problems = Vec::new();
        if snap.session.user != *app {
            let why = snap
                .session_bypass_reason()
                .map(|r| format!("; {r}"))
                .unwrap_or_default();
            problems.push(Finding::problem(
                &ROLE001,
                snap.session.user.clone(),
                format!("connected as {}, not the app role {app}{why}: isolation must be proven as the app connects", snap.session.user),
                format!("connect as {app}: rlsctl verify -U {app}"),
            ));
        }
        findings.check(&ROLE001, problems, format!("connected as {app}"));
    }
    if !snap.app.exists {
        let reason = format!("role {app} does not exist (run rlsctl apply)");
        for check in [ROLE002, ROLE003, ROLE004, ROLE006] {
            findings.push(Finding::problem(
                &check,
                app.clone(),
                reason.clone(),
                "rlsctl apply",
            ));
        }
    } else {
        let one = |check: &Check, bad: bool, detail: String, remedy: String| {
            if bad {
                vec![Finding::problem(check, app.clone(), detail, remedy)]
            } else {
                vec![]
            }
        };
        findings.check(
            &ROLE002,
            one(
                &ROLE002,
                snap.app.superuser,
                format!("{app} is a superuser: RLS never applies"),
                format!("ALTER ROLE {} NOSUPERUSER", quote_ident(app)),
            ),
            format!("{app} is not a superuser"),
        );
        findings.check(
            &ROLE003,
            one(
                &ROLE003,
                snap.app.bypassrls,
                format!("{app} has BYPASSRLS"),
                format!("ALTER ROLE {} NOBYPASSRLS", quote_ident(app)),
            ),
            format!("{app} does not have BYPASSRLS"),
        );
        let problems = snap
            .app
            .bypass_memberships
            .iter()
            .map(|role| {
                let why = if *role == target.admin_role {
                    "the break-glass role, whose policy reaches every row"
                } else {
                    "which bypasses RLS"
                };
                Finding::problem(
                    &ROLE004,
                    app.clone(),
                    format!("{app} is a member (directly or transitively) of {role}, {why}: SET ROLE {role} escapes every policy"),
                    format!("REVOKE {} FROM {}", quote_ident(role), quote_ident(app)),
                )
            })
            .collect();
        findings.check(
            &ROLE004,
            problems,
            format!("no membership path from {app} to a role that bypasses RLS"),
        );
        let problems = snap
            .app
            .setting_defaults
            .iter()
            .map(|d| {
                Finding::problem(
                    &ROLE006,
                    d.clone(),
                    format!("{d}: every session starts with a tenant nobody asked for"),
                    format!(
                        "ALTER ROLE ... RESET {} (or ALTER DATABASE ... RESET {})",
                        target.tenant_setting, target.tenant_setting
                    ),
                )
            })
            .collect();
        findings.check(
            &ROLE006,
            problems,
            format!("no default for {}", target.tenant_setting),
        );
    }
    let problems = snap
        .tables
        .iter()
        .filter(|t| t.exists && t.app_owns && !t.force)
        .map(|t| {
            Finding::problem(
                &ROLE005,
                t.display.clone(),
                format!("{app} owns (or is a member of the owner {} of) {} and FORCE is off: the owner bypasses RLS", t.owner.clone().unwrap_or_default(), t.display),
                format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY; better, make another role the owner", qualified(&target.schema, &t.name)),
            )
        })
        .collect();
    findings.check(
        &ROLE005,
        problems,
        format!("{app} owns no unforced tenant table"),
    );
    let problems = snap
        .tables
        .iter()
        .filter(|t| !t.app_forbidden_privileges.is_empty())
        .map(|t| {
            let privileges = t.app_forbidden_privileges.join(", ");
            Finding::problem(
                &ROLE007,
                t.display.clone(),
                format!("{app} holds {privileges} on {}: TRUNCATE and REFERENCES are not subject to row security", t.display),
                format!("REVOKE {privileges} ON {} FROM {} (and from PUBLIC or any role it is a member of)", qualified(&target.schema, &t.name), quote_ident(app)),
            )
        })
        .collect();
    findings.check(
        &ROLE007,
        problems,
        "no TRUNCATE, REFERENCES or TRIGGER for the app role",
    );
}

fn coverage_checks(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let column = &target.tenant_column;
    let setting = &target.tenant_setting;
    let mut rls = Vec::new();
    let mut force = Vec::new();
    let mut using = Vec::new();
    let mut check = Vec::new();
    let mut widen = Vec::new();
    for t in &snap.tables {
        let sql_name = qualified(&target.schema, &t.name);
        if !t.exists {
            let detail = format!("{} does not exist", t.display);
            rls.push(Finding::problem(
                &RLS001,
                t.display.clone(),
                detail,
                "fix RLSCTL_TENANT_TABLES or create the table, then rlsctl apply",
            ));
            continue;
        }
        if !t.rls {
            rls.push(Finding::problem(
                &RLS001,
                t.display.clone(),
                "relrowsecurity is false: no policy applies",
                format!("ALTER TABLE {sql_name} ENABLE ROW LEVEL SECURITY"),
            ));
        }
        if !t.force {
            force.push(Finding::problem(
                &RLS002,
                t.display.clone(),
                "relforcerowsecurity is false: the owner bypasses every policy",
                format!("ALTER TABLE {sql_name} FORCE ROW LEVEL SECURITY"),
            ));
        }
        if !t.has_column {
            using.push(Finding::problem(
                &RLS003,
                t.display.clone(),
                format!("{} has no column {column:?}", t.display),
                "fix RLSCTL_TENANT_COLUMN or the table",
            ));
            continue;
        }
        let own: Vec<&PolicyRow> = snap.policies_on(&t.display).collect();
        let scoped = |e: &Option<String>| {
            e.as_deref()
                .is_some_and(|e| scopes_to_tenant(e, column, setting))
        };
        let isolates = own.iter().any(|p| {
            p.permissive
                && p.applies_to_app
                && matches!(p.cmd.as_str(), "*" | "r")
                && scoped(&p.using)
        });
        if !isolates {
            using.push(Finding::problem(
                &RLS003,
                t.display.clone(),
                format!("no permissive policy for {} restricts reads to {column} = current_setting('{setting}')", target.app_role),
                "rlsctl apply (installs the tenant_isolation policy)",
            ));
        }
        for p in own.iter().filter(|p| p.permissive && p.applies_to_app) {
            if writes(&p.cmd) && !scoped(&p.check) {
                let found = p.check.clone().unwrap_or_else(|| "no WITH CHECK".into());
                check.push(Finding::problem(
                    &RLS004,
                    format!("{} policy {}", t.display, p.name),
                    format!("write policy {} has {found}: a tenant could write rows for another tenant", p.name),
                    format!("ALTER POLICY {} ON {sql_name} WITH CHECK ({column} = (SELECT NULLIF(current_setting({}, true), '')::...))", quote_ident(&p.name), quote_literal(setting)),
                ));
            }
            let reads_widely = p.cmd != "a" && !scoped(&p.using);
            let writes_widely = writes(&p.cmd) && p.check.is_some() && !scoped(&p.check);
            if reads_widely || writes_widely {
                let expr = if reads_widely {
                    p.using.clone()
                } else {
                    p.check.clone()
                };
                widen.push(Finding::problem(
                    &RLS005,
                    format!("{} policy {}", t.display, p.name),
                    format!(
                        "permissive policy {} ({}) ORs with the isolation policy: {}",
                        p.name,
                        cmd_name(&p.cmd),
                        expr.unwrap_or_else(|| "true".into())
                    ),
                    format!(
                        "DROP POLICY {} ON {sql_name}, or make it RESTRICTIVE",
                        quote_ident(&p.name)
                    ),
                ));
            }
        }
    }
    findings.check(&RLS001, rls, "RLS is enabled on every tenant table");
    findings.check(&RLS002, force, "FORCE is on for every tenant table");
    findings.check(
        &RLS003,
        using,
        "every tenant table has a policy scoping reads to the tenant",
    );
    findings.check(&RLS004, check, "every write policy checks the tenant");
    findings.check(&RLS005, widen, "no permissive policy widens access");

    // A table outside the configuration still counts as covered when RLS is on,
    // forced, and a policy scopes it to the tenant (DRF006 says it is unmonitored).
    let problems = snap
        .uncovered
        .iter()
        .filter(|(name, forced)| {
            let scoped = snap.policies_on(name).any(|p| {
                p.permissive
                    && p.applies_to_app
                    && p.using.as_deref().is_some_and(|u| scopes_to_tenant(u, column, setting))
            });
            !(*forced && scoped)
        })
        .map(|(name, _)| {
            Finding::problem(
                &RLS006,
                name.clone(),
                format!("{name} has a {column} column but is not a configured tenant table, and no forced RLS policy isolates it"),
                "add it to RLSCTL_TENANT_TABLES and run rlsctl apply",
            )
        })
        .collect();
    findings.check(
        &RLS006,
        problems,
        format!("every table in {} with {column} is covered", target.schema),
    );

    match &snap.bundle.null_counts {
        None => findings.push(Finding::skip(
            &RLS007,
            "the bundle's helper rlsctl.null_tenant_counts() is not installed or not executable",
        )),
        Some(counts) => {
            let problems = counts
                .iter()
                .filter_map(|(table, count)| match count {
                    Some(0) => None,
                    Some(n) => Some(Finding::problem(
                        &RLS007,
                        table.clone(),
                        format!("{n} row(s) with a NULL {column}: invisible to every tenant"),
                        "assign them a tenant (UPDATE ... SET tenant_id = ...) or delete them",
                    )),
                    None => Some(Finding::problem(
                        &RLS007,
                        table.clone(),
                        format!(
                            "unknown: the helper's owner {} cannot see every row (its break-glass policy is missing or narrowed), so it cannot count",
                            target.admin_role
                        ),
                        "rlsctl apply (re-installs the break-glass policy)",
                    )),
                })
                .collect();
            findings.check(&RLS007, problems, "no NULL tenant rows");
        }
    }
}

fn cmd_name(cmd: &str) -> &'static str {
    match cmd {
        "r" => "SELECT",
        "a" => "INSERT",
        "w" => "UPDATE",
        "d" => "DELETE",
        _ => "ALL",
    }
}

fn bypass_checks(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let views = snap
        .relations
        .iter()
        .filter(|r| r.relkind == "v" && !r.security_invoker && r.owner_bypasses)
        .map(|r| {
            Finding::problem(
                &BYP001,
                r.name.clone(),
                format!("{app} can read view {} over {}; it runs with the rights of its owner {}, who bypasses RLS", r.name, r.reads.join(", "), r.owner),
                if snap.session.server_version_num >= 150000 {
                    format!("ALTER VIEW {} SET (security_invoker = true)", r.name)
                } else {
                    format!("REVOKE SELECT ON {} FROM {}; or upgrade to PostgreSQL 15 for security_invoker", r.name, quote_ident(app))
                },
            )
        })
        .collect();
    findings.check(
        &BYP001,
        views,
        "no view exposes tenant tables with its owner's rights",
    );
    let stored = snap
        .relations
        .iter()
        .filter(|r| r.relkind == "m" || r.relkind == "f")
        .map(|r| {
            let what = if r.relkind == "m" {
                "materialized view"
            } else {
                "foreign table"
            };
            Finding::problem(
                &BYP002,
                r.name.clone(),
                format!(
                    "{app} can read {what} {}: RLS is not enforced on it at query time",
                    r.name
                ),
                format!("REVOKE SELECT ON {} FROM {}", r.name, quote_ident(app)),
            )
        })
        .collect();
    findings.check(
        &BYP002,
        stored,
        "no materialized view or foreign table with tenant data is readable",
    );
    let helper = helper_body();
    let is_bundle_helper =
        |f: &Function| f.schema == "rlsctl" && f.name == "null_tenant_counts" && f.source == helper;
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.security_definer && f.app_can_execute && !is_bundle_helper(f))
        .filter_map(|f| {
            let read: Vec<&str> = snap.tables.iter().filter(|t| mentions(&f.source, &t.name)).map(|t| t.display.as_str()).collect();
            (!read.is_empty()).then(|| {
                Finding::problem(
                    &BYP003,
                    f.signature.clone(),
                    format!("{app} can execute SECURITY DEFINER {} which reads {}: it runs as its owner, not under {app}'s policies", f.signature, read.join(", ")),
                    format!("REVOKE EXECUTE ON FUNCTION {} FROM {}, PUBLIC; or make it SECURITY INVOKER", f.signature, quote_ident(app)),
                )
            })
        })
        .collect();
    findings.check(
        &BYP003,
        problems,
        "no SECURITY DEFINER function executable by the app role reads tenant tables",
    );
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.security_definer && !f.pins_search_path)
        .map(|f| {
            Finding::problem(
                &BYP004,
                f.signature.clone(),
                format!("SECURITY DEFINER {} has no search_path setting: objects in pg_temp or a writable schema can hijack it", f.signature),
                format!("ALTER FUNCTION {} SET search_path = pg_catalog, pg_temp", f.signature),
            )
        })
        .collect();
    findings.check(
        &BYP004,
        problems,
        "every SECURITY DEFINER function pins search_path",
    );
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.leakproof)
        .map(|f| {
            Finding::problem(
                &BYP005,
                f.signature.clone(),
                format!("{} is LEAKPROOF: it may run before the policy filter and see other tenants' values", f.signature),
                format!("ALTER FUNCTION {} NOT LEAKPROOF", f.signature),
            )
        })
        .collect();
    findings.check(&BYP005, problems, "no user-defined LEAKPROOF function");
    let problems = snap
        .children
        .iter()
        .filter_map(|c| {
            let policy = snap.policies_on(&c.name).any(|p| {
                p.permissive && p.applies_to_app && p.using.as_deref().is_some_and(|e| scopes_to_tenant(e, &target.tenant_column, &target.tenant_setting))
            });
            let mut missing = Vec::new();
            if !c.rls {
                missing.push("RLS is off");
            }
            if !c.force {
                missing.push("FORCE is off");
            }
            if !policy {
                missing.push("no isolation policy");
            }
            (!missing.is_empty()).then(|| {
                Finding::problem(
                    &BYP006,
                    c.name.clone(),
                    format!("{} descends from {}; queried directly, the parent's policies do not apply: {}", c.name, c.parent, missing.join(", ")),
                    format!("add {} to RLSCTL_TENANT_TABLES (with its schema) and run rlsctl apply, or REVOKE access to it", c.name),
                )
            })
        })
        .collect();
    findings.check(&BYP006, problems, "children of tenant tables enforce RLS");
}

/// Whether `source` mentions `table` as a whole word (case-insensitive).
fn mentions(source: &str, table: &str) -> bool {
    let source = source.to_lowercase();
    let table = table.to_lowercase();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    source.match_indices(&table).any(|(at, _)| {
        let before = source[..at].chars().next_back();
        let after = source[at + table.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

fn performance_checks(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let problems = snap
        .tables
        .iter()
        .filter(|t| t.exists && t.has_column && !t.has_tenant_index)
        .map(|t| {
            Finding::problem(
                &PRF001,
                t.display.clone(),
                format!(
                    "no btree index is led by {}: every tenant query scans the whole table",
                    target.tenant_column
                ),
                format!(
                    "CREATE INDEX CONCURRENTLY {} ON {} ({})",
                    quote_ident(
                        &format!("{}_{}_idx", t.name, target.tenant_column)
                            .chars()
                            .take(63)
                            .collect::<String>()
                    ),
                    qualified(&target.schema, &t.name),
                    quote_ident(&target.tenant_column)
                ),
            )
        })
        .collect();
    findings.check(
        &PRF001,
        problems,
        "every tenant table has an index led by the tenant column",
    );
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_whole_words_only() {
        assert!(mentions(
            "select * from public.customers where x",
            "customers"
        ));
        assert!(mentions("FROM \"Customers\"", "customers"));
        assert!(!mentions("select * from customers_archive", "customers"));
    }
}
