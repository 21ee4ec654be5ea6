//! The log sources shadow records are read from: files the operator has, the
//! server's own log over the connection, and an RDS instance's log files
//! through the RDS API. Each fills a [`Found`](crate::model::log::Found)
//! through the sans-IO reader in `model::log`.

pub(crate) mod files;
pub(crate) mod rds;
pub(crate) mod server;
