//! Reading the snapshot: pipelined statements, independent of each other but
//! for the bundle's reads (they wait for phase one's word that the bundle is
//! there), so the count of statements is constant in the number of tables
//! and, through a tunnel, the round trips overlap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use tokio_postgres::Row;

use crate::model::config::Target;
use crate::model::snapshot::*;
use crate::model::sql::{fill, helper_body, quote_literal};
use crate::pg::cells::{all, Cells};

pub(crate) mod installed;
mod readable;
mod rows;

use crate::pg::{Begin, Db, DbResultExt, Param};
use readable::{policies_sql, records_sql, Readable, TRUE_TREE};
use rows::*;

const SESSION: &str = include_str!("../../sql/inspect/session.sql");
const ROLES: &str = include_str!("../../sql/inspect/roles.sql");
const APP_REACH: &str = include_str!("../../sql/inspect/app_reach.sql");
const TABLES: &str = include_str!("../../sql/inspect/tables.sql");
const FUNCTIONS: &str = include_str!("../../sql/inspect/functions.sql");
const LOSING_READERS: &str = include_str!("../../sql/inspect/losing_readers.sql");
const BUNDLE_PRESENT: &str = include_str!("../../sql/inspect/bundle_present.sql");
const BUNDLE_OBJECTS: &str = include_str!("../../sql/inspect/bundle_objects.sql");
const BUNDLE_RECORDS: &str = include_str!("../../sql/inspect/bundle_records.sql");
/// The md5 of the installed-table registry, as an older rlsctl records it
/// and checks it (apply still records it, for that rlsctl).
pub(crate) const REGISTRY_CHECKSUM: &str = include_str!("../../sql/bundle/registry_checksum.sql");
/// The md5 of the installed-table registry with each stored tree by its md5,
/// as apply records it and monitor checks it (DRF008).
pub(crate) const REGISTRY_DIGEST: &str = include_str!("../../sql/bundle/registry_digest.sql");
const NULL_COUNTS: &str = include_str!("../../sql/inspect/null_counts.sql");
const SCOPE: &str = include_str!("../../sql/inspect/scope.sql");
const UNCOVERED: &str = include_str!("../../sql/inspect/uncovered.sql");
const POLICIES: &str = include_str!("../../sql/inspect/policies.sql");
const REACH: &str = include_str!("../../sql/inspect/reach.sql");
/// Whether the session can read the bundle's registry (the policy read uses
/// the text apply recorded there), all three of its tables (the records), and
/// whether the registry has `policy_since` and the trees' md5 (an older
/// rlsctl's had not). Both connections ask: the sibling before its policy
/// read, the main one in phase one (for the records, when it takes them).
const BUNDLE_READABLE: &str = include_str!("../../sql/inspect/bundle_readable.sql");
const CHILDREN: &str = include_str!("../../sql/inspect/children.sql");
const RELATIONS: &str = include_str!("../../sql/inspect/relations.sql");
const FOREIGN_KEYS: &str = include_str!("../../sql/inspect/foreign_keys.sql");

/// The read verify and monitor make: one read-only transaction with the
/// search_path pinned (see [`Begin::Read`]), NULL tenants counted, the
/// policy read on a second connection in a transaction of its own. Every
/// read is inside a transaction, so a transaction pooler keeps each on
/// one server connection and the pin holds for all of it. Also returns
/// that second connection, idle, when there was one: the probes after the
/// read use it rather than open another (each one is a server process
/// started and a SCRAM handshake on both sides). The transaction is over
/// when this returns, and the snapshot is yet to be assembled: the caller
/// can use both connections (for the session-state probe) meanwhile.
pub(crate) async fn read_for_checks(
    db: &Db,
    target: &Target,
) -> Result<(SnapshotParts, Option<Db>)> {
    let reads = Reads {
        null_counts: true,
        parallel: true,
        sequences: false,
    };
    // BEGIN in one batch with the first reads.
    let (read, (parts, spare)) = match db
        .begin_with(Begin::Read, read_parts(db, target, reads))
        .await
    {
        Ok(read) => read,
        Err(err) if crate::pg::DbError::timed_out(&err) => {
            // (0: no advisory lock of apply's to look for)
            let holders = crate::inspect::installed::lock_holders(db, target, 0).await;
            let holders = if holders.is_empty() {
                "no session holds a lock on a tenant table now".to_string()
            } else {
                format!("holding locks on tenant tables: {}", holders.join("; "))
            };
            use crate::pg::transaction::{READ_LOCK_TIMEOUT, READ_STATEMENT_TIMEOUT};
            return Err(err.context(format!(
                    "the catalog read waited too long (lock_timeout {READ_LOCK_TIMEOUT}, statement_timeout {READ_STATEMENT_TIMEOUT}); {holders}"
                )));
        }
        Err(err) => return Err(err),
    };
    read.rollback()
        .await
        .doing("ending the read-only transaction")?;
    Ok((parts, spare))
}

/// Reads the snapshot: a fixed number of statements whatever the number of
/// tables, in two pipelined phases; with `reads.parallel`, the policy read
/// on a second connection beside both, returned idle for the caller's
/// next reads (`None` when it could not be had).
pub async fn read(db: &Db, target: &Target, reads: Reads) -> Result<(Snapshot, Option<Db>)> {
    let (parts, sibling) = read_parts(db, target, reads).await?;
    Ok((parts.assemble()?, sibling))
}

/// A snapshot as read, not yet one [`Snapshot`]: the tables and policies
/// converted as their rows arrived, the rest still rows. Assembling it takes a
/// few milliseconds at 2,000 tables, which the caller can spend beside the
/// session-state probe rather than before it.
pub(crate) struct SnapshotParts {
    target: Target,
    first: PhaseOne,
    second: PhaseTwo,
    aside: Aside,
}

impl SnapshotParts {
    /// The configured tenant tables as read.
    pub(crate) fn tables(&self) -> &[Table] {
        &self.second.tables
    }

    /// The one snapshot of all the reads.
    pub(crate) fn assemble(self) -> Result<Snapshot> {
        let Self {
            target,
            first,
            second,
            aside,
        } = self;
        assemble(&target, first, second, aside)
    }
}

/// See [`Snapshot::read`].
async fn read_parts(db: &Db, target: &Target, reads: Reads) -> Result<(SnapshotParts, Option<Db>)> {
    let params = Params::of(target);
    // The policy read, the largest, and the reads nothing else waits for
    // go to a sibling connection from the start, beside everything else
    // (the server works on both at once); `None` when there is no
    // sibling, and they run here after the rest.
    let (main, aside) = tokio::join!(
        read_main(db, target, &params, reads),
        read_aside(db, &params, reads.parallel),
    );
    let (first, mut second) = main?;
    let (mut aside, sibling) = match aside? {
        Some((aside, sibling)) => (aside, Some(sibling)),
        None => (aside_reads(db, &params, first.readable).await?, None),
    };
    // Records read aside while phase one saw no bundle are not used.
    let records = second.records.take().or(aside.records.take());
    second.records = records.filter(|_| first.bundle.installed);
    let parts = SnapshotParts {
        target: target.clone(),
        first,
        second,
        aside,
    };
    Ok((parts, sibling))
}

/// The values the reads bind, owned here so each statement can borrow them,
/// and which of the two connections took the records read.
struct Params<'a> {
    target: &'a Target,
    roles: Vec<String>,
    helper: String,
    shadow: String,
    /// A connection has taken the records read (see [`Params::records_once`]).
    records_taken: AtomicBool,
}

impl<'a> Params<'a> {
    fn of(target: &'a Target) -> Self {
        Self {
            target,
            roles: vec![target.app_role.clone(), target.admin_role.clone()],
            helper: helper_body(),
            shadow: crate::model::sql::shadow_body(&target.tenant_setting),
            records_taken: AtomicBool::new(false),
        }
    }

    /// The bundle's records, read by whichever connection is done with its
    /// own reads first (`None` for the other one, and when they are not
    /// readable): with a few tables the sibling, which connects later but has
    /// little to read; with thousands the main one, as the policy read then
    /// outweighs the rest.
    async fn records_once(
        &self,
        db: &Db,
        readable: Readable,
    ) -> Result<Option<Vec<Row>>, tokio_postgres::Error> {
        if !readable.records || self.records_taken.swap(true, Ordering::Relaxed) {
            return Ok(None);
        }
        let schema: [&dyn Param; 1] = [&self.target.schema];
        db.query(&records_sql(readable), &schema).await.map(Some)
    }

    /// The parameters of the reads that start from `scope.sql`.
    fn scope(&self) -> [&dyn Param; 4] {
        let t = self.target;
        [&t.schema, &t.tenant_column, &t.app_role, &t.tables]
    }
}

/// Phase one: who the session is and whether the bundle is there (the rest
/// depends on it), and the reads that need nothing else.
struct PhaseOne {
    session: Row,
    bundle: Bundle,
    /// What of the bundle this session may read.
    readable: Readable,
}

/// The reads on the sibling connection (or after the rest, without one).
struct Aside {
    /// Converted as they arrive, while the server works on the other reads.
    policies: Vec<ReadPolicy>,
    records: Option<Vec<Row>>,
    role_rows: Vec<Row>,
    app_reach: Row,
    function_rows: Vec<Row>,
    reader_rows: Vec<Row>,
    reach_set: Vec<Row>,
}

/// Phase two: the reads that grow with the tables.
struct PhaseTwo {
    /// Converted as they arrive, while the server works on the other reads.
    tables: Vec<Table>,
    uncovered: Vec<Row>,
    child_rows: Vec<Row>,
    /// Relations, and rules (a row with `rule` set).
    relation_rows: Vec<Row>,
    foreign_key_rows: Vec<Row>,
    records: Option<Vec<Row>>,
    null_counts: Option<Vec<Row>>,
}

/// Everything but the policies, on this connection: phase one and phase two's
/// catalog reads, then the bundle's reads.
async fn read_main(
    db: &Db,
    target: &Target,
    params: &Params<'_>,
    reads: Reads,
) -> Result<(PhaseOne, PhaseTwo)> {
    // The catalog reads need nothing from phase one: they go out with it, so
    // through a tunnel they do not wait a round trip for its answers. The
    // bundle's reads follow those answers.
    let (first, catalog) = tokio::try_join!(
        phase_one(db, target, params),
        catalog_reads(db, target, params, reads),
    )?;
    let (null_counts, records) = bundle_reads(db, params, &first, reads).await?;
    let CatalogRows {
        tables,
        uncovered,
        child_rows,
        relation_rows,
        foreign_key_rows,
    } = catalog;
    let second = PhaseTwo {
        tables,
        uncovered,
        child_rows,
        relation_rows,
        foreign_key_rows,
        records,
        null_counts,
    };
    Ok((first, second))
}

async fn phase_one(db: &Db, target: &Target, params: &Params<'_>) -> Result<PhaseOne> {
    let t = target;
    let session_sql = session_sql(db.info.server_version_num);
    let session: [&dyn Param; 2] = [&t.schema, &t.admin_role];
    let present: [&dyn Param; 4] = [&t.app_role, &t.admin_role, &params.helper, &params.shadow];
    let objects: [&dyn Param; 1] = [&t.admin_role];
    let (session, present, objects, readable) = tokio::try_join!(
        db.query_one(&session_sql, &session),
        db.query_one(BUNDLE_PRESENT, &present),
        db.query(BUNDLE_OBJECTS, &objects),
        db.query_one(BUNDLE_READABLE, &[]),
    )
    .doing("reading the catalog")?;
    let bundle = bundle_from(&present, &objects)?;
    if bundle.installed && !bundle.usage {
        bail!("the rlsctl schema exists but {} cannot read it (apply grants USAGE and SELECT to the app role)", db.info.user);
    }
    let readable = readable_from(&readable).doing("reading the catalog")?;
    Ok(PhaseOne {
        session,
        bundle,
        readable,
    })
}

/// What [`catalog_reads`] read.
struct CatalogRows {
    tables: Vec<Table>,
    uncovered: Vec<Row>,
    child_rows: Vec<Row>,
    relation_rows: Vec<Row>,
    foreign_key_rows: Vec<Row>,
}

/// Phase two's reads of the catalog: the tenant tables (converted as they
/// arrive), the uncovered tables, the children, the relations and rules over
/// them, and the foreign keys that reference them.
async fn catalog_reads(
    db: &Db,
    target: &Target,
    params: &Params<'_>,
    reads: Reads,
) -> Result<CatalogRows> {
    let t = target;
    let scope = params.scope();
    let (uncovered_sql, children_sql, relations_sql, foreign_keys_sql) = (
        format!("{SCOPE}\n{UNCOVERED}"),
        format!("{SCOPE}\n{CHILDREN}"),
        format!("{SCOPE}\n{RELATIONS}"),
        format!("{SCOPE}\n{FOREIGN_KEYS}"),
    );
    let table_params: [&dyn Param; 6] = [
        &t.schema,
        &t.tables,
        &t.tenant_column,
        &t.app_role,
        &t.admin_role,
        &reads.sequences,
    ];
    let reading = "reading tables, views and children";
    let tables = async {
        let rows = db.query(TABLES, &table_params).await.doing(reading)?;
        rows.iter()
            .map(|r| table_from(r, target))
            .collect::<Result<Vec<_>>>()
    };
    let rest = async {
        tokio::try_join!(
            db.query(&uncovered_sql, &scope),
            db.query(&children_sql, &scope),
            db.query(&relations_sql, &scope),
            db.query(&foreign_keys_sql, &scope),
        )
        .doing(reading)
    };
    let (tables, (uncovered, child_rows, relation_rows, foreign_key_rows)) =
        tokio::try_join!(tables, rest)?;
    Ok(CatalogRows {
        tables,
        uncovered,
        child_rows,
        relation_rows,
        foreign_key_rows,
    })
}

/// Phase two's reads of the bundle, which need phase one's word that it is
/// there: the NULL-tenant counts, then the records (unless the sibling
/// connection took them first).
async fn bundle_reads(
    db: &Db,
    params: &Params<'_>,
    first: &PhaseOne,
    reads: Reads,
) -> Result<(Option<Vec<Row>>, Option<Vec<Row>>)> {
    let bundle = &first.bundle;
    // Both at once: one round trip.
    let null_counts = async {
        if reads.null_counts && bundle.installed && bundle.helper_executable {
            let rows = db.query(NULL_COUNTS, &[]).await;
            Ok(Some(rows.doing("reading NULL tenants")?))
        } else {
            Ok(None)
        }
    };
    let records = async {
        if bundle.installed {
            (params.records_once(db, first.readable).await).doing("reading the bundle's records")
        } else {
            Ok(None)
        }
    };
    tokio::try_join!(null_counts, records)
}

/// What the aside reads' errors say they were doing.
const READING_ASIDE: &str = "reading the policies, roles and records";

/// The aside reads on a second connection, in a read-only transaction of
/// their own; `None` when reading on one connection (asked to, or no second
/// one).
async fn read_aside(db: &Db, params: &Params<'_>, parallel: bool) -> Result<Option<(Aside, Db)>> {
    if !parallel {
        return Ok(None);
    }
    let sibling = match db.sibling().await {
        Ok(sibling) => sibling,
        Err(err) => {
            tracing::debug!("reading on one connection: {err:#}");
            return Ok(None);
        }
    };
    let (read, row) = sibling
        .begin_with(Begin::Read, sibling.query_one(BUNDLE_READABLE, &[]))
        .await
        .doing(READING_ASIDE)?;
    let readable = readable_from(&row).doing(READING_ASIDE)?;
    let aside = aside_reads(&read, params, readable).await?;
    read.rollback().await.doing(READING_ASIDE)?;
    Ok(Some((aside, sibling)))
}

/// What of the bundle the session may read, from [`BUNDLE_READABLE`]'s row.
fn readable_from(row: &Row) -> Result<Readable, tokio_postgres::Error> {
    Ok(Readable {
        registry: row.try_get("registry")?,
        records: row.try_get("records")?,
        policy_since: row.try_get("policy_since")?,
        digests: row.try_get("digests")?,
    })
}

/// The policies (with the registry's text when it is readable), the roles,
/// what the app role reaches, the functions, the readers who lose rows and
/// who reaches every row, pipelined on `db`; then the bundle's records, unless
/// the main connection took them first.
async fn aside_reads(db: &Db, params: &Params<'_>, readable: Readable) -> Result<Aside> {
    let t = params.target;
    let (policies_sql, scope) = (policies_sql(readable), params.scope());
    let roles: [&dyn Param; 2] = [&params.roles, &t.schema];
    let app_reach: [&dyn Param; 4] = [&t.app_role, &t.tenant_setting, &t.schema, &t.tables];
    let functions: [&dyn Param; 1] = [&t.app_role];
    let readers: [&dyn Param; 4] = [&t.schema, &t.tables, &t.app_role, &t.admin_role];
    let reach: [&dyn Param; 3] = [&t.schema, &t.tables, &TRUE_TREE];
    let policies = async {
        let rows = db.query(&policies_sql, &scope).await.doing(READING_ASIDE)?;
        rows.iter().map(policy_from).collect::<Result<Vec<_>>>()
    };
    let rest = async {
        tokio::try_join!(
            db.query(ROLES, &roles),
            db.query_one(APP_REACH, &app_reach),
            db.query(FUNCTIONS, &functions),
            db.query(LOSING_READERS, &readers),
            db.query(REACH, &reach),
        )
        .doing(READING_ASIDE)
    };
    let (policies, (role_rows, app_reach, function_rows, reader_rows, reach_set)) =
        tokio::try_join!(policies, rest)?;
    let records = params
        .records_once(db, readable)
        .await
        .doing(READING_ASIDE)?;
    Ok(Aside {
        policies,
        records,
        role_rows,
        app_reach,
        function_rows,
        reader_rows,
        reach_set,
    })
}

/// The snapshot from the rows of both phases and the policy read.
fn assemble(target: &Target, first: PhaseOne, second: PhaseTwo, aside: Aside) -> Result<Snapshot> {
    let session = session_from(&first.session)?;
    let mut bundle = first.bundle;
    if let Some(rows) = &second.records {
        read_records(rows, &mut bundle)?;
    }
    if let Some(rows) = &second.null_counts {
        bundle.null_counts = Some(null_counts_from(rows)?);
    }
    let (app, admin) = roles_from(&aside.role_rows, &absent_role(&session), target)?;
    let recorded: HashMap<String, &Installed> = bundle
        .registry
        .iter()
        .map(|r| (target.display_table(&r.table), r))
        .collect();
    let mut policies: Vec<Policy> = aside
        .policies
        .into_iter()
        .map(|p| p.with_text(&recorded))
        .collect();
    // The read leaves the order to us: by table, then name, as COLLATE "C".
    policies.sort_unstable_by(|a, b| (&a.table, &a.name).cmp(&(&b.table, &b.name)));
    let reach = Cells::new(&aside.app_reach, "app_reach");
    let (relations, rules) = relations_and_rules(&second.relation_rows)?;
    Ok(Snapshot {
        app,
        admin,
        app_reach: AppReach {
            createrole_roles: createrole_roles(&reach)?,
            setting_defaults: setting_defaults(&reach, &target.tenant_setting)?,
            default_privileges: reach.column("default_privileges")?,
            default_select: reach.column("default_select")?,
            unreadable_by_new_app: reach.column("unreadable_by_new_app")?,
        },
        tables: second.tables,
        policies_by_table: index_by_table(&policies),
        policies,
        uncovered: all(&second.uncovered, "uncovered", |r| {
            Ok((r.column("name")?, r.column("forced")?))
        })?,
        relations,
        rules,
        foreign_keys: all(&second.foreign_key_rows, "foreign_keys", foreign_key_from)?,
        functions: all(&aside.function_rows, "functions", function_from)?,
        children: all(&second.child_rows, "children", child_from)?,
        losing_readers: all(&aside.reader_rows, "losing_readers", |r| {
            Ok((r.column("role")?, r.column("tables")?))
        })?,
        bundle,
        session: session.0,
        reach: all(&aside.reach_set, "reach", reacher_from)?,
    })
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
