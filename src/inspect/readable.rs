//! The reads whose SQL depends on what the session may read of the bundle
//! (its registry, its records, the columns an older rlsctl's lacked).

use super::{BUNDLE_RECORDS, POLICIES, REGISTRY_CHECKSUM, REGISTRY_DIGEST, SCOPE};
use crate::model::config::POLICY_NAME;
use crate::model::sql::{fill, quote_literal};

/// The stored tree of the constant `true` at any source position, as every
/// supported major writes it, as a LIKE pattern (a top-level CONST holds no
/// other node, so `%` can only match the position). Anything else is deparsed.
pub(super) const TRUE_TREE: &str =
    "{CONST :consttype 16 :consttypmod -1 :constcollid 0 :constlen 1 :constbyval true \
:constisnull false :location % :constvalue 1 [ 1 0 0 0 0 0 0 0 ]}";

/// The policy read, deparsing every expression or reusing the registry's text
/// for an isolation policy whose stored tree is unchanged since apply: with
/// `digests`, the md5 of each tree that apply recorded (or, in a row an older
/// rlsctl wrote, the tree itself); without, the trees an older rlsctl kept.
pub(super) fn policies_sql(readable: Readable) -> String {
    let (using_recorded, check_recorded, registry_trees) = match readable {
        Readable { registry: false, .. } => ("false", "false", ""),
        Readable { digests: true, .. } => (
            "CASE WHEN x0.using_md5 IS NOT NULL THEN md5(x0.q) = x0.using_md5 ELSE x0.q = x0.using_tree END",
            "CASE WHEN x0.check_md5 IS NOT NULL THEN md5(x0.w) = x0.check_md5 ELSE x0.w = x0.check_tree END",
            ", tt.installed_using_md5 AS using_md5, tt.installed_check_md5 AS check_md5, \
             tt.installed_using_tree || '' AS using_tree, tt.installed_check_tree || '' AS check_tree",
        ),
        Readable { .. } => (
            "x0.q = x0.using_tree",
            "x0.w = x0.check_tree",
            ", tt.installed_using_tree || '' AS using_tree, tt.installed_check_tree || '' AS check_tree",
        ),
    };
    let registry_join = if readable.registry {
        format!(
            "LEFT JOIN rlsctl.tenant_tables tt ON tt.schema_name = n.nspname AND tt.table_name = c.relname AND p.polname = {}",
            quote_literal(POLICY_NAME)
        )
    } else {
        String::new()
    };
    let true_tree = quote_literal(TRUE_TREE);
    let values = [
        ("using_recorded", using_recorded),
        ("check_recorded", check_recorded),
        ("registry_join", registry_join.as_str()),
        ("registry_trees", registry_trees),
        ("true_tree", true_tree.as_str()),
    ];
    format!("{SCOPE}\n{}", fill(POLICIES, "policies", &values))
}

/// The records read; `policy_since`: the registry has that column (else it
/// is read through `to_jsonb` of the whole row, which costs as much as the
/// rest of the read at 2,000 tables, and comes back NULL); `digests`: it has
/// the trees' md5, and the last apply recorded the registry's digest, which is
/// then what DRF008 compares (else the checksum an older rlsctl recorded, which
/// hashes every stored tree).
pub(super) fn records_sql(readable: Readable) -> String {
    let since = if readable.policy_since {
        "tt.policy_since"
    } else {
        "(to_jsonb(tt) ->> 'policy_since')::timestamptz"
    };
    let registry_sums = if readable.digests {
        format!(
            "CASE WHEN to_jsonb(last) ->> 'registry_digest' IS NULL \
             THEN ARRAY[to_jsonb(last) ->> 'registry_checksum', {REGISTRY_CHECKSUM}] \
             ELSE ARRAY[to_jsonb(last) ->> 'registry_digest', {REGISTRY_DIGEST}] END"
        )
    } else {
        format!("ARRAY[to_jsonb(last) ->> 'registry_checksum', {REGISTRY_CHECKSUM}]")
    };
    fill(
        BUNDLE_RECORDS,
        "bundle_records",
        &[
            ("registry_sums", registry_sums.as_str()),
            ("policy_since", since),
        ],
    )
}

/// What the aside reads may read of the bundle.
#[derive(Clone, Copy)]
pub(super) struct Readable {
    /// The registry (the policy read uses the text apply recorded there).
    pub(super) registry: bool,
    /// All three of the bundle's tables.
    pub(super) records: bool,
    /// The registry has `policy_since`.
    pub(super) policy_since: bool,
    /// The registry has the md5 of each policy's stored trees.
    pub(super) digests: bool,
}
