//! The model: the database as the snapshot describes it, the bundle's SQL and
//! policies, the plan, the checks as pure rules, shadow records, and the
//! reports. No I/O here: everything that talks to PostgreSQL, AWS, a process
//! or the network lives in the layers above and passes values down.

pub(crate) mod batches;
pub mod checks;
pub mod config;
pub(crate) mod exceptions;
#[cfg(test)]
pub(crate) mod fixture;
pub mod log;
pub mod plan;
pub(crate) mod policy;
pub(crate) mod report;
pub mod secret;
pub mod shadow;
pub mod snapshot;
pub mod sql;
pub(crate) mod toml_file;

/// Version of the bundle's SQL, recorded in `rlsctl.bundle_history`.
pub(crate) const BUNDLE_VERSION: &str = "2";
