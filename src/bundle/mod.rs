//! The SQL bundle: embedded files, rendering for the configured tables,
//! the plan, and applying it.

pub mod apply;
pub mod batches;
pub mod plan;
pub mod policy;
pub mod rollback;
pub mod sql;

/// Version of the bundle's SQL, recorded in `rlsctl.bundle_history`.
pub const BUNDLE_VERSION: &str = "2";
