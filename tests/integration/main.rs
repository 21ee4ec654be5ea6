//! The one integration-test binary (the AWS crates make every extra test
//! binary slow to link). Every test starts its own throwaway PostgreSQL.

// A test's panic is its failure: unwrap and expect say where.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// pre_exec: a spawned rlsctl gets the signal state an operator's shell or
// supervisor would give it (support::inherit); nothing else is unsafe.
#![allow(unsafe_code)]

mod support;

mod alerting;
mod app;
mod apply;
mod audit;
mod aws_double;
mod breaks;
mod credentials;
mod existing_rls;
mod fleet;
mod formats;
mod hardening;
mod isolation;
mod layers;
mod monitor;
mod pooler;
mod rds_double;
mod rds_master;
mod reach;
mod rehearse;
mod round_trips;
mod scale;
mod server_version;
mod shadow;
mod ssh;
mod ssm_double;
mod staged;
mod tenant_errors;
mod tunnel;
mod verify;
