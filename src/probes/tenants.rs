//! The tenants the probes act as: those given with `--tenant`, checked to
//! fit the tenant column's type, or ids made up to exist nowhere.

use anyhow::{anyhow, bail, Result};

use crate::model::checks::shorten;
use crate::model::secret::random_hex;
use crate::model::snapshot::Snapshot;
use crate::pg::{describe, Begin, Db};

/// The two tenants the probes act as: those given, else ids that exist
/// nowhere (each checked to fit the tenant column's type first).
pub(super) async fn probe_tenants(
    db: &Db,
    snap: &Snapshot,
    tenants: &[String],
) -> Result<(String, String)> {
    let types = crate::model::snapshot::tenant_column_types(&snap.tables);
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    // Usually every id fits: one statement says so. Else, one by one, for
    // the message that names the id, and the next kind of made-up id.
    let ([made_a, ..], [made_b, ..]) = (candidates(), candidates());
    let ids: Vec<&str> = tenants
        .iter()
        .map(String::as_str)
        .chain([made_a.as_str(), made_b.as_str()])
        .collect();
    if castable_together(db, &ids, &types).await {
        return Ok(pick_tenants(tenants, made_a, made_b));
    }
    for id in tenants {
        check_castable(db, id, &types).await?;
    }
    let random_a = random_tenant(db, &types).await?;
    let random_b = random_tenant(db, &types).await?;
    Ok(pick_tenants(tenants, random_a, random_b))
}

/// The probes' two tenants: the first two given, made-up ones for the rest.
fn pick_tenants(tenants: &[String], random_a: String, random_b: String) -> (String, String) {
    let tenant_a = tenants.first().cloned().unwrap_or(random_a.clone());
    let tenant_b = tenants.get(1).cloned().unwrap_or(if tenants.is_empty() {
        random_b
    } else {
        random_a
    });
    (tenant_a, tenant_b)
}

/// Refuses a tenant id that the tenant column's type cannot hold, with a clear
/// message. Each cast in its own pinned transaction (the type names are as
/// `format_type` wrote them under the pinned search_path).
async fn check_castable(db: &Db, id: &str, types: &[&str]) -> Result<()> {
    for ty in types {
        let transaction = db.begin(Begin::Pinned).await?;
        let cast = transaction
            .query(&format!("SELECT $1::text::{ty}"), &[&id])
            .await;
        transaction.rollback().await?;
        if let Err(e) = cast {
            return Err(anyhow!(
                "--tenant {} is not a valid {ty} (the tenant column's type): {}",
                shorten(id),
                describe(&e)
            ));
        }
    }
    Ok(())
}

/// Whether every id casts to every type, in one statement (in a pinned
/// transaction, like [`check_castable`]).
async fn castable_together(db: &Db, ids: &[&str], types: &[&str]) -> bool {
    let casts: Vec<String> = (1..=ids.len())
        .flat_map(|i| {
            types
                .iter()
                .map(move |ty| format!("${i}::text::{ty} IS NULL"))
        })
        .collect();
    let sql = format!("SELECT {}", casts.join(", "));
    let params: Vec<&dyn crate::pg::Param> =
        ids.iter().map(|id| id as &dyn crate::pg::Param).collect();
    let Ok(transaction) = db.begin(Begin::Pinned).await else {
        return false;
    };
    let cast = transaction.query(&sql, &params).await;
    transaction.rollback().await.is_ok() && cast.is_ok()
}

/// A tenant id that exists nowhere and casts to every tenant column type.
pub(crate) async fn random_tenant(db: &Db, types: &[&str]) -> Result<String> {
    for candidate in candidates() {
        if check_castable(db, &candidate, types).await.is_ok() {
            return Ok(candidate);
        }
    }
    bail!("cannot make up a tenant id for the tenant column types {}: pass two real ones with --tenant", types.join(", "))
}

/// Made-up tenant ids, each new: a UUID, a negative number, a text.
fn candidates() -> [String; 3] {
    let hex = random_hex(16);
    [
        format!(
            "{}-{}-4{}-8{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        ),
        format!(
            "-{}",
            u32::from_str_radix(&hex[0..7], 16).unwrap_or(1) + 1_000_000
        ),
        format!("rlsctl-probe-{hex}"),
    ]
}
