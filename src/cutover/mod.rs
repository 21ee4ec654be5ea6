//! Changing the database: applying a plan (the bundle, its policies, the
//! roles) and rolling it back, each in one transaction.

pub mod apply;
mod preflight;
pub(crate) mod rollback;
