//! How many transactions apply needs: the lock budget of the server it runs on
//! and the batches of tenant tables that fit in it.
//!
//! Every table apply changes stays locked (ACCESS EXCLUSIVE) until its
//! transaction commits, and those locks live in one shared table that every
//! session of the server draws from. Measured on 13–18: installing a table
//! (privileges, RLS, FORCE, both policies, its sequences) takes one relation
//! lock, the table's; the pre-flight's NULL count releases its locks table by
//! table (`sql/probes/probes.sql`).

use serde::Serialize;

/// Lock-table slots one tenant table's change holds until commit.
pub(crate) const LOCKS_PER_TABLE: i64 = 1;
/// Slots the rest of the transaction takes (roles, the rlsctl schema, the
/// catalog reads), with room to spare.
pub(crate) const LOCKS_FIXED: i64 = 64;

/// The server's shared lock table, as read before apply.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct LockBudget {
    /// `max_locks_per_transaction`.
    pub(crate) max_locks_per_transaction: i64,
    /// `max_connections + max_prepared_transactions`.
    pub(crate) slots: i64,
    /// Locks other sessions hold in the shared table now.
    pub(crate) held_by_others: i64,
}

impl LockBudget {
    /// The lock table's size: `max_locks_per_transaction × slots`.
    pub(crate) fn size(&self) -> i64 {
        self.max_locks_per_transaction * self.slots
    }

    /// What apply may take: half of what is free, so the application's own
    /// sessions keep the other half while apply holds its locks.
    pub(crate) fn available(&self) -> i64 {
        ((self.size() - self.held_by_others) / 2).max(0)
    }
}

/// The batches apply runs in, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Batching {
    /// Transactions the tenant tables are applied in (0: no table to change).
    pub(crate) batches: usize,
    /// Tenant tables per transaction (the last may hold fewer).
    pub(crate) batch_size: usize,
    /// Tenant tables to change.
    pub(crate) tables: usize,
    /// Lock-table slots one transaction for every table would hold.
    pub(crate) locks_needed: i64,
    /// Slots apply allows itself (half of the free lock table).
    pub(crate) locks_available: i64,
    /// In words, for the plan.
    pub(crate) reason: String,
    /// The size came from `--batch-size`, not from the lock budget.
    pub(crate) forced: bool,
}

impl Batching {
    /// Whether the change is split over several transactions.
    pub(crate) fn split(&self) -> bool {
        self.batches > 1
    }
}

/// Splits `tables` table changes into batches that fit `budget`, or into
/// `forced` tables each (`--batch-size`).
pub(crate) fn plan(tables: usize, budget: &LockBudget, forced: Option<usize>) -> Batching {
    let locks_needed = LOCKS_FIXED + LOCKS_PER_TABLE * tables as i64;
    let locks_available = budget.available();
    let of = |size: usize| tables.div_ceil(size.max(1));
    let (batch_size, reason) = if tables == 0 {
        (0, "no tenant table to change".to_string())
    } else if let Some(size) = forced {
        let size = size.max(1);
        (size.min(tables), format!("--batch-size {size}"))
    } else if locks_needed <= locks_available {
        (
            tables,
            format!(
                "fits in one transaction: about {locks_needed} locks of the {locks_available} apply allows itself \
                 (half of the {} free of {} slots: max_locks_per_transaction {} x {} connections and prepared transactions)",
                budget.size() - budget.held_by_others,
                budget.size(),
                budget.max_locks_per_transaction,
                budget.slots
            ),
        )
    } else {
        let size = ((locks_available - LOCKS_FIXED) / LOCKS_PER_TABLE).max(1) as usize;
        (
            size,
            format!(
                "one transaction would hold about {locks_needed} locks, more than the {locks_available} apply allows itself \
                 (half of the {} free of {} slots: max_locks_per_transaction {} x {} connections and prepared transactions); \
                 raise max_locks_per_transaction to {} or more to keep it to one transaction",
                budget.size() - budget.held_by_others,
                budget.size(),
                budget.max_locks_per_transaction,
                budget.slots,
                one_transaction_setting(locks_needed, budget)
            ),
        )
    };
    Batching {
        batches: if tables == 0 { 0 } else { of(batch_size) },
        batch_size,
        tables,
        locks_needed,
        locks_available,
        reason,
        forced: forced.is_some() && tables > 0,
    }
}

/// The smallest max_locks_per_transaction (a power of two, as people set it)
/// under which `locks_needed` fits in half of the free lock table.
fn one_transaction_setting(locks_needed: i64, budget: &LockBudget) -> i64 {
    let mut setting = budget.max_locks_per_transaction.max(64);
    while (setting * budget.slots - budget.held_by_others) / 2 < locks_needed {
        setting *= 2;
    }
    setting
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: LockBudget = LockBudget {
        max_locks_per_transaction: 64,
        slots: 100,
        held_by_others: 0,
    };

    #[test]
    fn two_thousand_tables_fit_a_default_server() {
        let b = plan(2000, &DEFAULTS, None);
        assert_eq!((b.batches, b.batch_size), (1, 2000), "{}", b.reason);
        assert!(b.reason.starts_with("fits in one transaction"));
    }

    #[test]
    fn a_busy_or_small_lock_table_splits_the_change() {
        let busy = LockBudget {
            held_by_others: 6000,
            ..DEFAULTS
        };
        // (6400 - 6000) / 2 = 200 available, 64 of them fixed: 136 tables a batch.
        let b = plan(500, &busy, None);
        assert_eq!((b.batches, b.batch_size), (4, 136), "{}", b.reason);
        assert!(
            b.reason.contains("raise max_locks_per_transaction to 128"),
            "{}",
            b.reason
        );
        let b = plan(7000, &DEFAULTS, None);
        assert!(b.split());
        assert!(b.reason.contains("to 256"), "{}", b.reason);
    }

    #[test]
    fn a_forced_size_and_the_edges() {
        let b = plan(10, &DEFAULTS, Some(3));
        assert_eq!((b.batches, b.batch_size), (4, 3));
        assert_eq!(plan(10, &DEFAULTS, Some(0)).batch_size, 1);
        assert_eq!(plan(2, &DEFAULTS, Some(50)).batches, 1);
        assert_eq!(plan(0, &DEFAULTS, None).batches, 0);
        let full = LockBudget {
            held_by_others: 7000,
            ..DEFAULTS
        };
        assert_eq!(plan(5, &full, None).batch_size, 1);
    }
}
