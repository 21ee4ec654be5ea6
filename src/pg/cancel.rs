//! Ctrl-C and SIGTERM while statements run: every connection's cancel token
//! is kept, so a stop signal cancels what the server is doing at once.

use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::NoTls;

use anyhow::Result;

use super::dial::dial;
use super::options::ConnectOptions;
use super::tls;

/// Cancel tokens of every connection opened, so Ctrl-C can stop what the
/// server is doing (a statement waiting on a lock would otherwise hold the
/// locks it already has until lock_timeout).
struct OpenConnection {
    token: tokio_postgres::CancelToken,
    options: ConnectOptions,
}
static OPEN: std::sync::Mutex<Vec<OpenConnection>> = std::sync::Mutex::new(Vec::new());

/// Registers a connection's cancel token, with how to reach its server again
/// (no password: a cancel request carries none).
pub(super) fn register(token: tokio_postgres::CancelToken, options: &ConnectOptions) {
    if let Ok(mut open) = OPEN.lock() {
        open.push(OpenConnection {
            token,
            options: ConnectOptions {
                password: None,
                password_from: None,
                ..options.clone()
            },
        });
    }
}

/// Asks the server to cancel whatever each open connection is running, over a
/// new connection to the same address with the same TLS. Errors are ignored:
/// this runs on the way out.
pub(crate) async fn cancel_all() {
    let open: Vec<OpenConnection> = OPEN
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    for OpenConnection { token, options } in open {
        let Ok((stream, server_name)) = dial(&options).await else {
            continue;
        };
        let _ = match tls::connector(options.sslmode, options.sslrootcert.as_deref()) {
            Ok(Some(mut make)) => match MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(
                &mut make,
                &server_name,
            ) {
                Ok(tls) => token.cancel_query_raw(stream, tls).await,
                Err(_) => continue,
            },
            _ => token.cancel_query_raw(stream, NoTls).await,
        };
    }
}

/// [`crate::signals::until_stopped`] for work that talks to PostgreSQL: on a
/// stop signal the statements in flight are cancelled too, so the server stops
/// working on them at once rather than when it notices the closed socket.
pub(crate) async fn until_interrupted<T>(
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let result = crate::signals::until_stopped(work).await;
    if matches!(&result, Err(err) if err.is::<crate::signals::Interrupted>()) {
        cancel_all().await;
    }
    result
}
