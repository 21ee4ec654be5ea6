//! The one integration-test binary (the AWS crates make every extra test
//! binary slow to link). Every test starts its own throwaway PostgreSQL.

mod support;

mod app;
mod apply;
mod audit;
mod hardening;
mod isolation;
mod layers;
mod monitor;
mod pooler;
mod rds_double;
mod rds_master;
mod reach;
mod rehearse;
mod scale;
mod shadow;
mod ssm_double;
mod tunnel;
mod verify;
