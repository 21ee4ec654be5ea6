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
        let sql = format!("SELECT $1::text::{ty}");
        let cast = db
            .rolled_back_batch(Begin::Pinned, db.query(&sql, &[&id]))
            .await;
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
    // BEGIN, the casts and ROLLBACK in one batch: one round trip.
    db.rolled_back_batch(Begin::Pinned, db.query(&sql, &params))
        .await
        .is_ok()
}

/// A tenant id that exists nowhere and casts to every tenant column type.
pub(crate) async fn random_tenant(db: &Db, types: &[&str]) -> Result<String> {
    let candidates = candidates();
    if let Some(known) = known_castable(&candidates, types) {
        return Ok(known);
    }
    for candidate in candidates {
        if check_castable(db, &candidate, types).await.is_ok() {
            return Ok(candidate);
        }
    }
    bail!("cannot make up a tenant id for the tenant column types {}: pass two real ones with --tenant", types.join(", "))
}

/// The first of `candidates` that casts to every one of `types` as far as
/// rlsctl knows their text forms (the text types, uuid, integer, bigint,
/// numeric), without asking the server: a round trip or more saved on every
/// probe run (through a tunnel, its latency each). `None`: a type it does
/// not know, which the server is asked about.
fn known_castable(candidates: &[String; 3], types: &[&str]) -> Option<String> {
    const TEXT: [&str; 3] = ["text", "character varying", "character"];
    let fits = |candidate: usize, ty: &&str| {
        TEXT.contains(ty)
            || match candidate {
                0 => *ty == "uuid",
                1 => matches!(*ty, "integer" | "bigint" | "numeric"),
                _ => false,
            }
    };
    (0..candidates.len())
        .find(|&i| types.iter().all(|ty| fits(i, ty)))
        .map(|i| candidates[i].clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_for_known_types_is_made_here_and_unknown_ones_are_asked() {
        let candidates = candidates();
        let made = |types: &[&str]| known_castable(&candidates, types);
        assert_eq!(made(&["uuid"]).as_ref(), Some(&candidates[0]));
        assert_eq!(made(&["text", "uuid"]).as_ref(), Some(&candidates[0]));
        assert_eq!(
            made(&["bigint", "character varying"]).as_ref(),
            Some(&candidates[1])
        );
        assert_eq!(made(&["uuid", "integer"]), None);
        assert_eq!(made(&["smallint"]), None, "the number may not fit");
        assert_eq!(made(&["citext"]), None);
        let number: i64 = candidates[1].parse().unwrap();
        assert!(number < -1_000_000);
    }
}
