//! Changing the database: applying a plan (the bundle, its policies, the
//! roles) and rolling it back, each in one transaction.

pub mod apply;
mod preflight;
pub(crate) mod rollback;

use std::time::Duration;

use crate::model::plan::{Enforcement, RoleInputs};

/// How `apply` should run.
#[derive(Debug)]
pub struct Options {
    /// Plan only.
    pub dry_run: bool,
    /// Lock timeout per attempt.
    pub lock_timeout: Duration,
    /// Retries after a lock timeout.
    pub lock_retries: u32,
    /// Role passwords and rotation.
    pub roles: RoleInputs,
    /// Allow creating the LOGIN app role without a password.
    pub no_app_password: bool,
    /// Tenant tables per transaction (`--batch-size`); otherwise the lock budget decides.
    pub batch_size: Option<usize>,
    /// Which tables are enforced; the others are in shadow mode.
    pub enforcement: Enforcement,
    /// `--replace-policies`: drop the permissive policies apply did not create
    /// that would stay ORed with the bundle's, their definitions recorded.
    pub replace_policies: bool,
    /// Refuse a policy apply did not create that needs replacing (PRE011):
    /// apply does; `rollback --to-shadow`, the gentle way back in an
    /// incident, does not (DRF002 reports such a policy).
    pub judge_existing: bool,
    /// Reviewed exceptions (`--accept`): the only way past a pre-flight
    /// refusal that is a finding about the database (PRE011, PRE012).
    pub accepted: Accepted,
    /// `rollback --to-shadow`: the reason, recorded in the break-glass log
    /// with the tables put in shadow mode, in the same transaction.
    pub to_shadow_reason: Option<String>,
}

/// The reviewed exceptions apply honours, and the day they are read against.
#[derive(Debug, Default)]
pub struct Accepted {
    /// As `--accept` gives them.
    pub(crate) exceptions: Vec<crate::model::exceptions::Exception>,
    /// Today (`YYYY-MM-DD`), for their `until`.
    pub(crate) today: String,
}
