//! The driver's errors as rlsctl reports and branches on them: one line with
//! the SQLSTATE ([`describe`]), and typed errors that keep the driver's error
//! and the server's code, so a caller tells a lock wait, a timeout or a
//! rejected password from the rest without reading text.

use anyhow::Result;
use tokio_postgres::error::SqlState;

/// A one-line description of a driver error: the server's message with its
/// detail and hint, and the SQLSTATE. Never includes the statement text.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{} [{}]", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    crate::logging::error_chain(err)
}

/// Extension for turning driver errors into a [`DbError`] that says what
/// rlsctl was doing.
pub(crate) trait DbResultExt<T> {
    /// Adds what we were doing to the server's message.
    fn doing(self, what: &str) -> Result<T>;
}

impl<T> DbResultExt<T> for Result<T, tokio_postgres::Error> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| anyhow::Error::new(DbError::new(what, e)))
    }
}

/// A statement the server refused or could not finish, with what rlsctl was
/// doing. Shown as one line ([`describe`]); the driver's error is kept.
#[derive(Debug)]
pub(crate) struct DbError {
    /// What rlsctl was doing (`reading NULL tenants`).
    pub(crate) what: String,
    /// The server's message, as [`describe`] writes it.
    pub(crate) message: String,
    /// The driver's error, with the server's fields.
    driver: tokio_postgres::Error,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.message)
    }
}

// The driver's error is not given as the source: its text is already in the
// message, on one line (the driver's own spans several).
impl std::error::Error for DbError {}

impl DbError {
    /// `driver`'s error while doing `what`.
    pub(crate) fn new(what: &str, driver: tokio_postgres::Error) -> Self {
        Self {
            what: what.to_string(),
            message: describe(&driver),
            driver,
        }
    }

    /// The server's SQLSTATE, when it sent one.
    pub(crate) fn code(&self) -> Option<&SqlState> {
        self.driver.code()
    }

    /// The [`DbError`]s in `err`'s chain.
    fn in_chain(err: &anyhow::Error) -> impl Iterator<Item = &DbError> {
        err.chain().filter_map(|e| e.downcast_ref::<DbError>())
    }

    /// `err` is a wait for a lock that ran out (`lock_timeout`) or a
    /// statement cancelled by `statement_timeout`.
    pub(crate) fn timed_out(err: &anyhow::Error) -> bool {
        Self::in_chain(err).any(|e| {
            matches!(e.code(), Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED)
        })
    }

    /// `err` is a lock that could not be had (`lock_timeout`, a deadlock):
    /// the same transaction may succeed when tried again.
    pub(crate) fn lock_unavailable(err: &anyhow::Error) -> Option<&DbError> {
        Self::in_chain(err).find(|e| {
            matches!(e.code(), Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::T_R_DEADLOCK_DETECTED)
        })
    }
}

/// Why a connection could not be opened, where a caller branches on it.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The server asks for a password and none was given.
    PasswordNeeded {
        /// `user@host:port/db`.
        target: String,
    },
    /// The server rejected the password (SQLSTATE 28P01).
    PasswordRejected {
        /// The whole message, with the server's text.
        message: String,
    },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PasswordNeeded { target } => write!(
                f,
                "{target} needs a password and none was given: set PGPASSWORD, use ~/.pgpass or pass --password-from"
            ),
            Self::PasswordRejected { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for ConnectError {}
