//! From the catalog reads' rows to the model's values: every column through
//! [`Cells`], so a NULL or a drifted type is an error naming the query.

use std::collections::HashMap;

use anyhow::Result;
use tokio_postgres::Row;

use crate::model::config::Target;
use crate::model::snapshot::*;
use crate::pg::cells::{all, Cells};

/// Whether the bundle is there and as apply makes it, and what is in its schema.
pub(super) fn bundle_from(present: &Row, objects: &[Row]) -> Result<Bundle> {
    let present = Cells::new(present, "bundle_present");
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
    for row in objects {
        let row = Cells::new(row, "bundle_objects");
        let detail: String = row.column("detail")?;
        match row.column::<String>("kind")?.as_str() {
            "owner" => bundle.schema_owner = Some((detail, row.column("owner_is_superuser")?)),
            "writer" => bundle.writers.push((row.column("role")?, detail)),
            _ => bundle.foreign_objects.push(detail),
        }
    }
    Ok(bundle)
}

/// NULL-tenant counts per table, sorted by table.
pub(super) fn null_counts_from(rows: &[Row]) -> Result<Vec<(String, Option<i64>)>> {
    let mut counts = all(rows, "null_counts", |row| {
        let table = format!(
            "{}.{}",
            row.column::<String>("schema_name")?,
            row.column::<String>("table_name")?
        );
        Ok((table, row.column("null_rows")?))
    })?;
    counts.sort();
    Ok(counts)
}

pub(super) fn child_from(row: &Cells) -> Result<Child> {
    Ok(Child {
        name: row.column("name")?,
        parent: row.column("parent")?,
        rls: row.column("rls")?,
        force: row.column("force")?,
    })
}

/// The session, and what a role created now gets through PUBLIC.
pub(super) struct SessionRow(pub(super) Session, bool, bool);

pub(super) fn session_from(row: &Row) -> Result<SessionRow> {
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
            rds_iam_exists: row.column("rds_iam_exists")?,
            can_grant_rds_iam: row.column("can_grant_rds_iam")?,
            break_glass_sessions: row.column("break_glass_sessions")?,
            stats_ext_private: row.column("stats_ext_private")?,
        },
        row.column("public_schema_usage")?,
        row.column("public_connect")?,
    ))
}

/// A role that does not exist yet: it will get what PUBLIC has, so no grant is needed for that.
pub(super) fn absent_role(session: &SessionRow) -> Role {
    Role {
        schema_usage: session.1,
        connect: session.2,
        ..Role::default()
    }
}

pub(super) fn roles_from(rows: &[Row], absent: &Role, target: &Target) -> Result<(Role, Role)> {
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
            iam: row.column("iam")?,
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

pub(super) fn table_from(row: &Row, target: &Target) -> Result<Table> {
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
        other_kind: row.column("other_kind")?,
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

/// A policy as read, before the registry's text is at hand: an isolation
/// policy whose tree is the one apply recorded comes without its text.
pub(super) struct ReadPolicy {
    policy: Policy,
    using_recorded: bool,
    check_recorded: bool,
}

impl ReadPolicy {
    /// The policy, its recorded expressions' text the registry's (as the read
    /// left it, `None`, when the registry has no row for its table).
    pub(super) fn with_text(self, recorded: &HashMap<String, &Installed>) -> Policy {
        let mut policy = self.policy;
        if let Some(installed) = recorded.get(&policy.table) {
            if self.using_recorded {
                policy.using = Some(installed.using.clone());
            }
            if self.check_recorded {
                policy.check = Some(installed.check.clone());
            }
        }
        policy
    }
}

pub(super) fn policy_from(row: &Row) -> Result<ReadPolicy> {
    let row = Cells::new(row, "policies");
    Ok(ReadPolicy {
        using_recorded: row.column("using_recorded")?,
        check_recorded: row.column("check_recorded")?,
        policy: Policy {
            using: row.column("using_expr")?,
            check: row.column("check_expr")?,
            table: row.column("table_name")?,
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
        },
    })
}

pub(super) fn reacher_from(row: &Cells) -> Result<Reacher> {
    Ok(Reacher {
        role: row.column("role")?,
        login: row.column("login")?,
        reason: row.column("reason")?,
        tables: row.column::<Option<i64>>("tables")?.unwrap_or(0),
        all_tables: row.column::<Option<bool>>("all_tables")?.unwrap_or(false),
        path: row.column("path")?,
        reads_as_itself: row.column("reads_as_itself")?,
        kind: ReachKind::from_code(&row.column::<String>("kind")?),
        policy: row.column("policy")?,
    })
}

/// The relations read's rows: the views, materialized views and foreign
/// tables, and the rules (a row whose `rule` is set).
pub(super) fn relations_and_rules(rows: &[Row]) -> Result<(Vec<Relation>, Vec<Rule>)> {
    let (mut relations, mut rules) = (Vec::new(), Vec::new());
    for row in rows {
        let row = Cells::new(row, "relations");
        match row.column::<Option<String>>("rule")? {
            Some(name) => rules.push(Rule {
                name,
                table: row.column("name")?,
                event: row.column::<Option<String>>("event")?.unwrap_or_default(),
                app_fires: row.column("app_fires")?,
                owner: row.column("owner")?,
                owner_bypasses: row.column("owner_bypasses")?,
                reads: row.column("reads")?,
                definition_md5: row.column("definition_md5")?,
            }),
            None => relations.push(relation_from(&row)?),
        }
    }
    Ok((relations, rules))
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
        definition_md5: row.column("definition_md5")?,
    })
}

pub(super) fn foreign_key_from(row: &Cells) -> Result<ForeignKey> {
    let kind: String = row.column("kind")?;
    Ok(ForeignKey {
        kind: match kind.as_str() {
            "child" => ForeignKeyKind::Child,
            "cross" => ForeignKeyKind::Cross,
            other => anyhow::bail!("reading foreign keys: unknown kind {other:?}"),
        },
        table: row.column("name")?,
        name: row.column("constraint_name")?,
        parent: row.column("parent")?,
        definition: row.column("definition")?,
        app_can_read: row.column("app_can_read")?,
        covered: row.column("covered")?,
    })
}

pub(super) fn function_from(row: &Cells) -> Result<Function> {
    Ok(Function {
        signature: row.column("signature")?,
        schema: row.column("schema")?,
        name: row.column("name")?,
        security_definer: row.column("security_definer")?,
        leakproof: row.column("leakproof")?,
        search_path: row.column("search_path")?,
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
pub(super) fn setting_defaults(row: &Cells, setting: &str) -> Result<Vec<String>> {
    let mut defaults: Vec<String> = row.column("setting_defaults")?;
    let start: String = row.column("session_start_value")?;
    if defaults.is_empty() && !start.is_empty() {
        defaults.push(format!(
            "server or connection: {setting}={start} (postgresql.conf or the parameter group, ALTER SYSTEM, or PGOPTIONS)"
        ));
    }
    Ok(defaults)
}

/// The roles with CREATEROLE the app role is or reaches, each with the role
/// granted to it on the way (two arrays of one statement, in one order).
pub(super) fn createrole_roles(row: &Cells) -> Result<Vec<CreateroleRole>> {
    let names: Vec<String> = row.column("createrole_roles")?;
    let granted: Vec<String> = row.column("createrole_granted")?;
    anyhow::ensure!(
        names.len() == granted.len(),
        "app_reach: {} CREATEROLE role(s) but {} grant(s) on the way",
        names.len(),
        granted.len()
    );
    Ok(names
        .into_iter()
        .zip(granted)
        .map(|(name, granted)| CreateroleRole {
            name,
            granted: Some(granted).filter(|g| !g.is_empty()),
        })
        .collect())
}

pub(super) fn read_records(rows: &[Row], bundle: &mut Bundle) -> Result<()> {
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
                policy_since: values
                    .get(4)
                    .cloned()
                    .flatten()
                    .and_then(|s| s.parse().ok()),
            }),
            "history" => {
                bundle.recorded_bypass_roles = Some(names(&v(0))?);
                bundle.last_apply = Some(v(1));
                bundle.appliers = names(&v(2))?;
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
                bundle.recorded_existing = match values.get(7).cloned().flatten() {
                    None => None,
                    Some(json) if json == "null" => None,
                    Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
                        anyhow::anyhow!("reading bundle_records: the existing policies in the last history row are not what apply writes ({e})")
                    })?),
                };
            }
            _ => bundle.open_break_glass.push(BreakGlass {
                tables: names(&v(0))?,
                started_by: v(1),
                started_at: v(2),
                reason: v(3),
            }),
        }
    }
    Ok(())
}

/// A list of names the records hold as a JSON array (a name may hold a comma).
fn names(json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json).map_err(|e| {
        anyhow::anyhow!("reading bundle_records: a list of names is not a JSON array ({e})")
    })
}
