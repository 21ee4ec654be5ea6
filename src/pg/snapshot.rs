//! Reading the snapshot: two pipelined phases of independent statements (the
//! second needs the tenant tables' oids from the first), so the count of
//! statements is constant in the number of tables and, through a tunnel, the
//! round trips overlap.

use crate::pg::Param;
use std::collections::HashMap;

use anyhow::{bail, Result};
use tokio_postgres::Row;

use crate::model::config::{Target, POLICY_NAME};
use crate::model::snapshot::*;
use crate::model::sql::{fill, helper_body, quote_literal};
use crate::pg::cells::{all, Cells};
use crate::pg::{Begin, Db, DbResultExt};

const SESSION: &str = include_str!("../../sql/inspect/session.sql");
const ROLES: &str = include_str!("../../sql/inspect/roles.sql");
const APP_REACH: &str = include_str!("../../sql/inspect/app_reach.sql");
const TABLES: &str = include_str!("../../sql/inspect/tables.sql");
const FUNCTIONS: &str = include_str!("../../sql/inspect/functions.sql");
const LOSING_READERS: &str = include_str!("../../sql/inspect/losing_readers.sql");
const BUNDLE_PRESENT: &str = include_str!("../../sql/inspect/bundle_present.sql");
const BUNDLE_OBJECTS: &str = include_str!("../../sql/inspect/bundle_objects.sql");
const BUNDLE_RECORDS: &str = include_str!("../../sql/inspect/bundle_records.sql");
/// The md5 of the installed-table registry, as apply records it.
pub(crate) const REGISTRY_CHECKSUM: &str = include_str!("../../sql/bundle/registry_checksum.sql");
const NULL_COUNTS: &str = include_str!("../../sql/inspect/null_counts.sql");
const SCOPE: &str = include_str!("../../sql/inspect/scope.sql");
const UNCOVERED: &str = include_str!("../../sql/inspect/uncovered.sql");
const POLICIES: &str = include_str!("../../sql/inspect/policies.sql");
const REACH: &str = include_str!("../../sql/inspect/reach.sql");
/// Whether the session can read the bundle's registry (the policy read uses
/// the text apply recorded there).
const REGISTRY_READABLE: &str =
    "SELECT coalesce(has_table_privilege(to_regclass('rlsctl.tenant_tables'), 'SELECT'), false)";
const CHILDREN: &str = include_str!("../../sql/inspect/children.sql");
const RELATIONS: &str = include_str!("../../sql/inspect/relations.sql");

/// The stored tree of the constant `true` at any source position, as every
/// supported major writes it, as a LIKE pattern (a top-level CONST holds no
/// other node, so `%` can only match the position). Anything else is deparsed.
const TRUE_TREE: &str =
    "{CONST :consttype 16 :consttypmod -1 :constcollid 0 :constlen 1 :constbyval true \
:constisnull false :location % :constvalue 1 [ 1 0 0 0 0 0 0 0 ]}";

/// The policy read, deparsing every expression or reusing the registry's text
/// for an isolation policy whose stored tree is unchanged since apply.
fn policies_sql(with_registry: bool) -> String {
    let values: [(&str, String); 6] = if with_registry {
        [
            ("using", "CASE WHEN x.using_tree = x.q THEN NULL ELSE pg_get_expr(p.polqual, p.polrelid) END".into()),
            ("check", "CASE WHEN x.check_tree = x.w THEN NULL ELSE pg_get_expr(p.polwithcheck, p.polrelid) END".into()),
            ("using_recorded", "x.using_tree = x.q".into()),
            ("check_recorded", "x.check_tree = x.w".into()),
            (
                "registry_join",
                format!(
                    "LEFT JOIN rlsctl.tenant_tables tt ON tt.schema_name = n.nspname AND tt.table_name = c.relname AND p.polname = {}",
                    quote_literal(POLICY_NAME)
                ),
            ),
            // `|| ''` makes a plain copy: compared twice, decompressed once.
            ("registry_trees", ", tt.installed_using_tree || '' AS using_tree, tt.installed_check_tree || '' AS check_tree".into()),
        ]
    } else {
        [
            ("using", "pg_get_expr(p.polqual, p.polrelid)".into()),
            ("check", "pg_get_expr(p.polwithcheck, p.polrelid)".into()),
            ("using_recorded", "false".into()),
            ("check_recorded", "false".into()),
            ("registry_join", String::new()),
            ("registry_trees", String::new()),
        ]
    };
    let true_tree = quote_literal(TRUE_TREE);
    let mut values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    values.push(("true_tree", &true_tree));
    format!("{SCOPE}\n{}", fill(POLICIES, "policies", &values))
}

impl Snapshot {
    /// The read verify and monitor make: one read-only transaction with the
    /// search_path pinned (see [`Db::begin_read`]), NULL tenants counted, the
    /// policy read on a second connection in a transaction of its own. Every
    /// read is inside a transaction, so a transaction pooler keeps each on
    /// one server connection and the pin holds for all of it.
    pub(crate) async fn read_for_checks(db: &Db, target: &Target) -> Result<Self> {
        let read = db
            .begin(Begin::Read)
            .await
            .doing("starting the read-only transaction")?;
        let reads = Reads {
            null_counts: true,
            parallel: true,
        };
        let snapshot = Self::read(&read, target, reads).await?;
        read.rollback()
            .await
            .doing("ending the read-only transaction")?;
        Ok(snapshot)
    }

    /// Reads the snapshot: a fixed number of statements whatever the number of
    /// tables, in two pipelined phases; with `reads.parallel`, the policy read
    /// on a second connection beside both.
    pub async fn read(db: &Db, target: &Target, reads: Reads) -> Result<Self> {
        let roles = vec![target.app_role.clone(), target.admin_role.clone()];
        let helper = helper_body();
        let session_params: [&dyn Param; 2] = [&target.schema, &target.admin_role];
        let session_sql = session_sql(db.info.server_version_num);
        let role_params: [&dyn Param; 2] = [&roles, &target.schema];
        let reach_params: [&dyn Param; 2] = [&target.app_role, &target.tenant_setting];
        let table_params: [&dyn Param; 5] = [
            &target.schema,
            &target.tables,
            &target.tenant_column,
            &target.app_role,
            &target.admin_role,
        ];
        let function_params: [&dyn Param; 1] = [&target.app_role];
        let reader_params: [&dyn Param; 4] = [
            &target.schema,
            &target.tables,
            &target.app_role,
            &target.admin_role,
        ];
        let shadow = crate::model::sql::shadow_body(&target.tenant_setting);
        let present_params: [&dyn Param; 4] =
            [&target.app_role, &target.admin_role, &helper, &shadow];
        let objects_params: [&dyn Param; 1] = [&target.admin_role];
        let reach_set_params: [&dyn Param; 3] = [&target.schema, &target.tables, &TRUE_TREE];
        let scope_params: [&dyn Param; 4] = [
            &target.schema,
            &target.tenant_column,
            &target.app_role,
            &target.tables,
        ];
        // The policy read, the largest, on a sibling connection from the
        // start, beside everything else (the server works on both at once);
        // `None` when there is no sibling, and it runs with the rest.
        let policy_side = async {
            if !reads.parallel {
                return Ok(None);
            }
            let sibling = match db.sibling().await {
                Ok(sibling) => sibling,
                Err(err) => {
                    tracing::debug!("reading on one connection: {err:#}");
                    return Ok(None);
                }
            };
            let read = sibling.begin(Begin::Read).await?;
            let registry: bool = read.query_one(REGISTRY_READABLE, &[]).await?.try_get(0)?;
            let rows = read.query(&policies_sql(registry), &scope_params).await?;
            read.rollback().await?;
            Ok::<_, tokio_postgres::Error>(Some(rows))
        };
        let records_params: [&dyn Param; 1] = [&target.schema];
        let (uncovered_sql, children_sql, relations_sql) = (
            format!("{SCOPE}\n{UNCOVERED}"),
            format!("{SCOPE}\n{CHILDREN}"),
            format!("{SCOPE}\n{RELATIONS}"),
        );
        // Everything else on this connection: phase one, small (who the
        // session is, whether the bundle is there: the rest depends on it),
        // then phase two, the reads that grow with the tables.
        let main_side = async {
            let (
                session,
                role_rows,
                reach,
                function_rows,
                reader_rows,
                present,
                objects,
                reach_set,
            ) = tokio::try_join!(
                db.query_one(&session_sql, &session_params),
                db.query(ROLES, &role_params),
                db.query_one(APP_REACH, &reach_params),
                db.query(FUNCTIONS, &function_params),
                db.query(LOSING_READERS, &reader_params),
                db.query_one(BUNDLE_PRESENT, &present_params),
                db.query(BUNDLE_OBJECTS, &objects_params),
                db.query(REACH, &reach_set_params),
            )
            .doing("reading the catalog")?;
            let present = Cells::new(&present, "bundle_present");
            let mut bundle = Bundle {
                installed: present.column("installed")?,
                usage: present.column("usage")?,
                records_current: present.column("records_current")?,
                shadow_executable: present.column("shadow_executable")?,
                helper_executable: present.column("helper_executable")?,
                helper_current: present.column("helper_current")?,
                shadow_current: present.column("shadow_current")?,
                app_grants: present.column("app_grants")?,
                ..Bundle::default()
            };
            for row in &objects {
                let row = Cells::new(row, "bundle_objects");
                let detail: String = row.column("detail")?;
                match row.column::<String>("kind")?.as_str() {
                    "owner" => {
                        bundle.schema_owner = Some((detail, row.column("owner_is_superuser")?))
                    }
                    "writer" => bundle.writers.push((row.column("role")?, detail)),
                    _ => bundle.foreign_objects.push(detail),
                }
            }
            if bundle.installed && !bundle.usage {
                bail!("the rlsctl schema exists but {} cannot read it (apply grants USAGE and SELECT to the app role)", db.info.user);
            }
            let records = async {
                if bundle.installed {
                    db.query(
                        &fill(
                            BUNDLE_RECORDS,
                            "bundle_records",
                            &[("registry_checksum", REGISTRY_CHECKSUM)],
                        ),
                        &records_params,
                    )
                    .await
                    .map(Some)
                } else {
                    Ok(None)
                }
            };
            let null_counts = async {
                if reads.null_counts && bundle.installed && bundle.helper_executable {
                    db.query(NULL_COUNTS, &[]).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            let (table_rows, uncovered, child_rows, relation_rows, records, null_counts) =
                tokio::try_join!(
                    db.query(TABLES, &table_params),
                    db.query(&uncovered_sql, &scope_params),
                    db.query(&children_sql, &scope_params),
                    db.query(&relations_sql, &scope_params),
                    records,
                    null_counts,
                )
                .doing("reading tables, views, children and the bundle's records")?;
            Ok((
                (
                    session,
                    role_rows,
                    reach,
                    function_rows,
                    reader_rows,
                    reach_set,
                ),
                bundle,
                (
                    table_rows,
                    uncovered,
                    child_rows,
                    relation_rows,
                    records,
                    null_counts,
                ),
            ))
        };
        let (main_side, policy_rows) = tokio::join!(main_side, policy_side);
        let (
            (session, role_rows, reach, function_rows, reader_rows, reach_set),
            mut bundle,
            (table_rows, uncovered, child_rows, relation_rows, records, null_counts),
        ) = main_side?;
        let session = session_from(&session)?;
        let policy_rows = match policy_rows.doing("reading the policies")? {
            Some(rows) => rows,
            None => db
                .query(&policies_sql(bundle.installed), &scope_params)
                .await
                .doing("reading the policies")?,
        };
        let tables = table_rows
            .iter()
            .map(|r| table_from(r, target))
            .collect::<Result<Vec<Table>>>()?;
        if let Some(rows) = records {
            read_records(&rows, &mut bundle)?;
        }
        if let Some(rows) = null_counts {
            let mut counts = Vec::with_capacity(rows.len());
            for row in &rows {
                let row = Cells::new(row, "null_counts");
                let table = format!(
                    "{}.{}",
                    row.column::<String>("schema_name")?,
                    row.column::<String>("table_name")?
                );
                counts.push((table, row.column("null_rows")?));
            }
            counts.sort();
            bundle.null_counts = Some(counts);
        }

        let (app, admin) = roles_from(&role_rows, &absent_role(&session), target)?;
        let recorded: HashMap<String, &Installed> = bundle
            .registry
            .iter()
            .map(|r| (target.display_table(&r.table), r))
            .collect();
        let policies = policy_rows
            .iter()
            .map(|row| policy_from(row, &recorded))
            .collect::<Result<Vec<Policy>>>()?;
        let reach = Cells::new(&reach, "app_reach");
        Ok(Self {
            app,
            admin,
            app_reach: AppReach {
                createrole_roles: reach.column("createrole_roles")?,
                setting_defaults: setting_defaults(&reach, &target.tenant_setting)?,
                default_privileges: reach.column("default_privileges")?,
            },
            tables,
            policies_by_table: index_by_table(&policies),
            policies,
            uncovered: all(&uncovered, "uncovered", |r| {
                Ok((r.column("name")?, r.column("forced")?))
            })?,
            relations: all(&relation_rows, "relations", relation_from)?,
            functions: all(&function_rows, "functions", function_from)?,
            children: all(&child_rows, "children", |r| {
                Ok(Child {
                    name: r.column("name")?,
                    parent: r.column("parent")?,
                    rls: r.column("rls")?,
                    force: r.column("force")?,
                })
            })?,
            losing_readers: all(&reader_rows, "losing_readers", |r| {
                Ok((r.column("role")?, r.column("tables")?))
            })?,
            bundle,
            session: session.0,
            reach: all(&reach_set, "reach", reacher_from)?,
        })
    }
}

/// The reach set as it is now (see [`Reacher`]): apply reads it after its
/// changes, in the same transaction, to record it.
pub(crate) async fn read_reach(db: &Db, target: &Target) -> Result<Vec<Reacher>> {
    let params: [&dyn Param; 3] = [&target.schema, &target.tables, &TRUE_TREE];
    let rows = db
        .query(REACH, &params)
        .await
        .doing("reading who reaches every row")?;
    all(&rows, "reach", reacher_from)
}

/// The session read for this server: whether the session may set a parameter
/// per role is `has_parameter_privilege` on PostgreSQL 15 and later, and only
/// a superuser's (or RDS's rds_superuser's, for pgaudit) before.
fn session_sql(server_version_num: i32) -> String {
    let can_set = |parameter: &str| {
        if server_version_num >= 150000 {
            format!(
                "has_parameter_privilege({}, 'SET')",
                quote_literal(parameter)
            )
        } else {
            "false".to_string()
        }
    };
    fill(
        SESSION,
        "session",
        &[
            ("can_set:pgaudit.log", &can_set("pgaudit.log")),
            ("can_set:log_statement", &can_set("log_statement")),
        ],
    )
}

/// The session, and what a role created now gets through PUBLIC.
struct SessionRow(Session, bool, bool);

fn session_from(row: &Row) -> Result<SessionRow> {
    let row = Cells::new(row, "session");
    Ok(SessionRow(
        Session {
            database: row.column("database")?,
            user: row.column("user_name")?,
            session_user: row.column("session_user_name")?,
            superuser: row.column("superuser")?,
            createrole: row.column("createrole")?,
            createdb: row.column("createdb")?,
            replication: row.column("replication")?,
            bypassrls: row.column("bypassrls")?,
            can_create_schema: row.column("can_create_schema")?,
            can_grant_schema_usage: row.column("can_grant_schema_usage")?,
            server_version_num: row.column("server_version_num")?,
            bypass_roles: row.column("bypass_roles")?,
            pgaudit_loaded: row.column("pgaudit_loaded")?,
            can_set_pgaudit: row.column("can_set_pgaudit")?,
            can_set_log_statement: row.column("can_set_log_statement")?,
            break_glass_sessions: row.column("break_glass_sessions")?,
        },
        row.column("public_schema_usage")?,
        row.column("public_connect")?,
    ))
}

/// A role that does not exist yet: it will get what PUBLIC has, so no grant is needed for that.
fn absent_role(session: &SessionRow) -> Role {
    Role {
        schema_usage: session.1,
        connect: session.2,
        ..Role::default()
    }
}

fn roles_from(rows: &[Row], absent: &Role, target: &Target) -> Result<(Role, Role)> {
    let mut app = absent.clone();
    let mut admin = absent.clone();
    for row in rows {
        let row = Cells::new(row, "roles");
        let name: String = row.column("name")?;
        let role = Role {
            exists: true,
            login: row.column("login")?,
            superuser: row.column("superuser")?,
            bypassrls: row.column("bypassrls")?,
            createdb: row.column("createdb")?,
            createrole: row.column("createrole")?,
            replication: row.column("replication")?,
            schema_usage: row.column("schema_usage")?,
            connect: row.column("connect")?,
            session_is_admin: row.column("session_is_admin")?,
            session_inherits: row.column("session_inherits")?,
            settings: row.column("settings")?,
        };
        if name == target.app_role {
            app = role;
        } else {
            admin = role;
        }
    }
    Ok((app, admin))
}

fn table_from(row: &Row, target: &Target) -> Result<Table> {
    let row = Cells::new(row, "tables");
    let name: String = row.column("name")?;
    let schemas: Vec<String> = row.column("sequence_schemas")?;
    let names: Vec<String> = row.column("sequence_names")?;
    let usage: Vec<bool> = row.column("sequence_app_usage")?;
    let partition_of: Option<String> = row.column("partition_of")?;
    Ok(Table {
        display: target.display_table(&name),
        name,
        partition_of: partition_of.map(|root| target.display_table(&root)),
        partitioned: row.column("partitioned")?,
        exists: row.column("exists")?,
        has_column: row.column("has_column")?,
        column_type: row.column("column_type")?,
        owner: row.column("owner")?,
        session_owns: row.column("session_owns")?,
        app_owns: row.column("app_owns")?,
        rls: row.column("rls")?,
        force: row.column("force")?,
        has_tenant_index: row.column("has_tenant_index")?,
        public_privileges: row.column("public_privileges")?,
        app_privileges: row.column("app_privileges")?,
        admin_privileges: row.column("admin_privileges")?,
        app_forbidden_privileges: row.column("app_forbidden_privileges")?,
        sequences: schemas
            .into_iter()
            .zip(names)
            .zip(usage)
            .map(|((schema, name), app_usage)| Sequence {
                schema,
                name,
                app_usage,
            })
            .collect(),
        session_can_select: row.column("session_can_select")?,
    })
}

/// A policy row; an isolation policy whose tree is the one apply recorded comes
/// without its text, which is the registry's.
fn policy_from(row: &Row, recorded: &HashMap<String, &Installed>) -> Result<Policy> {
    let row = Cells::new(row, "policies");
    let table: String = row.column("table_name")?;
    let registry = recorded.get(&table);
    let text =
        |column: &str, flag: &str, from: fn(&Installed) -> &String| -> Result<Option<String>> {
            Ok(match (row.column::<bool>(flag)?, registry) {
                (true, Some(installed)) => Some(from(installed).clone()),
                _ => row.column(column)?,
            })
        };
    Ok(Policy {
        using: text("using_expr", "using_recorded", |i| &i.using)?,
        check: text("check_expr", "check_recorded", |i| &i.check)?,
        table,
        name: row.column("name")?,
        cmd: {
            let code: String = row.column("cmd")?;
            Command::from_polcmd(&code).ok_or_else(|| {
                anyhow::anyhow!("reading policies: unknown policy command {code:?}")
            })?
        },
        permissive: row.column("permissive")?,
        roles: row.column("roles")?,
        applies_to_app: row.column("applies_to_app")?,
        applies_to_session: row.column("applies_to_session")?,
        using_builtin: row.column::<Option<bool>>("using_builtin")?.unwrap_or(true),
        check_builtin: row.column::<Option<bool>>("check_builtin")?.unwrap_or(true),
    })
}

fn reacher_from(row: &Cells) -> Result<Reacher> {
    Ok(Reacher {
        role: row.column("role")?,
        login: row.column("login")?,
        reason: row.column("reason")?,
        tables: row.column::<Option<i64>>("tables")?.unwrap_or(0),
        all_tables: row.column::<Option<bool>>("all_tables")?.unwrap_or(false),
        path: row.column("path")?,
        reads_as_itself: row.column("reads_as_itself")?,
    })
}

fn relation_from(row: &Cells) -> Result<Relation> {
    Ok(Relation {
        name: row.column("name")?,
        kind: {
            let code: String = row.column("relkind")?;
            RelationKind::from_relkind(&code)
                .ok_or_else(|| anyhow::anyhow!("reading relations: unknown relkind {code:?}"))?
        },
        owner: row.column("owner")?,
        owner_bypasses: row.column("owner_bypasses")?,
        security_invoker: row.column("security_invoker")?,
        reads: row.column("reads")?,
        bare_name: row.column("bare_name")?,
        app_can_select: row.column("app_can_select")?,
    })
}

fn function_from(row: &Cells) -> Result<Function> {
    Ok(Function {
        signature: row.column("signature")?,
        schema: row.column("schema")?,
        name: row.column("name")?,
        security_definer: row.column("security_definer")?,
        leakproof: row.column("leakproof")?,
        pins_search_path: row.column("pins_search_path")?,
        app_can_execute: row.column("app_can_execute")?,
        source: row.column("source")?,
        language: row.column("language")?,
        owner: row.column("owner")?,
        returns: row.column("returns")?,
        in_extension: row.column("in_extension")?,
        app_fires: row.column("app_fires")?,
        comment: row.column("comment")?,
        user_functions: row.column("user_functions")?,
    })
}

/// Role and database defaults of the tenant setting, and, when none explains
/// it, the value the session started with (server configuration or connection
/// options). Placeholder settings such as `app.tenant_id` are not in
/// pg_settings, so the session's own value is the evidence.
fn setting_defaults(row: &Cells, setting: &str) -> Result<Vec<String>> {
    let mut defaults: Vec<String> = row.column("setting_defaults")?;
    let start: String = row.column("session_start_value")?;
    if defaults.is_empty() && !start.is_empty() {
        defaults.push(format!(
            "server or connection: {setting}={start} (postgresql.conf or the parameter group, ALTER SYSTEM, or PGOPTIONS)"
        ));
    }
    Ok(defaults)
}

fn read_records(rows: &[Row], bundle: &mut Bundle) -> Result<()> {
    for row in rows {
        let row = Cells::new(row, "bundle_records");
        let kind: String = row.column("kind")?;
        let values: Vec<Option<String>> = row.column("fields")?;
        let v = |i: usize| values.get(i).cloned().flatten().unwrap_or_default();
        match kind.as_str() {
            "registry" => bundle.registry.push(Installed {
                table: v(0),
                using: v(2),
                check: v(3),
            }),
            "history" => {
                bundle.recorded_bypass_roles = Some(
                    v(0).split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                );
                bundle.last_apply = Some(v(1));
                bundle.appliers = v(2)
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                // What apply wrote, or an error: a history row someone
                // garbled must not read as "nothing recorded".
                bundle.recorded_reach = match values.get(3).cloned().flatten() {
                    // an apply before the reach set was recorded
                    None => None,
                    Some(json) if json == "null" => None,
                    Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
                        anyhow::anyhow!("reading bundle_records: the reach set in the last history row is not what apply writes ({e})")
                    })?),
                };
                bundle.registry_checksum = Some((values.get(4).cloned().flatten(), v(5)));
                bundle.recorded_logging = values.get(6).cloned().flatten();
            }
            _ => bundle.open_break_glass.push(BreakGlass {
                tables: v(0).split(',').map(String::from).collect(),
                started_by: v(1),
                started_at: v(2),
                reason: v(3),
            }),
        }
    }
    Ok(())
}
