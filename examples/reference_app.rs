//! A reference application for the rlsctl middleware contract.
//!
//! Every request:
//! 1. must carry `X-Tenant-Id` (400 otherwise, before touching the database);
//! 2. runs in one transaction on one connection, with the tenant set by
//!    `set_config('app.tenant_id', $1, true)` on that connection, so it ends
//!    with the transaction and never reaches the next request on it (this
//!    holds through a transaction pooler too);
//! 3. is answered with security headers.
//!
//! Requests are served concurrently (hyper on tokio), each taking one
//! connection from a pool (`--pool N`, default 8) for its whole transaction;
//! `--single-connection` shares one connection, each request holding it for
//! its whole transaction.
//!
//! `GET /health/tenant-security` reports what the session looks like inside a
//! request, for `rlsctl verify --app-url`: the user, the tenant context and the
//! rows the request can see. `GET /customers` shows the pattern on real data.
//!
//! Run it with the usual PG* variables (as the app role!):
//!   PGUSER=app_user PGPASSWORD=... cargo run --example reference_app -- --listen 127.0.0.1:8080
//!
//! Deliberately broken variants, only so rlsctl's tests can show that verify
//! catches them: `--allow-requests-without-tenant` and `--omit-security-headers`
//! break rules 1 and 3; `--broken tenant-in-global` keeps the tenant in a
//! process-wide variable; `--broken tenant-on-another-connection` sets it for
//! the session on one pooled connection and runs the queries on another.

// A test tool: a panic is its failure, and says where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use serde_json::json;
use tokio_postgres::{Client, NoTls};

/// The tenant setting the policies read.
const TENANT_SETTING: &str = "app.tenant_id";

/// Headers sent on every response.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    (
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// The deliberate bugs.
#[derive(Clone, Copy, PartialEq)]
enum Broken {
    None,
    /// The tenant lives in a process-wide variable between reading the header
    /// and querying.
    TenantInGlobal,
    /// A session-level SET on one pooled connection, queries on another.
    TenantOnAnotherConnection,
}

/// Where a request gets its connection.
enum Connections {
    /// A pool; each request takes one connection for its whole transaction.
    Pool(deadpool_postgres::Pool),
    /// One connection, each request holding it for its whole transaction.
    Single(tokio::sync::Mutex<Client>),
}

struct App {
    connections: Connections,
    tables: Vec<String>,
    allow_missing_tenant: bool,
    omit_security_headers: bool,
    broken: Broken,
    /// The process-wide tenant of `--broken tenant-in-global`.
    global_tenant: std::sync::Mutex<String>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let listen = value("--listen").unwrap_or_else(|| "127.0.0.1:8080".into());
    let pool_size: usize = value("--pool").map_or(Ok(8), |v| v.parse())?;
    let single = args.iter().any(|a| a == "--single-connection");
    let broken = match value("--broken").as_deref() {
        None => Broken::None,
        Some("tenant-in-global") => Broken::TenantInGlobal,
        Some("tenant-on-another-connection") if !single => Broken::TenantOnAnotherConnection,
        Some(other) => {
            return Err(format!(
                "unknown --broken {other:?} (tenant-on-another-connection needs the pool)"
            )
            .into())
        }
    };
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let mut config = tokio_postgres::Config::new();
    config
        .host(env("PGHOST", "127.0.0.1"))
        .port(env("PGPORT", "5432").parse()?)
        .dbname(env("PGDATABASE", "edgarautoshop"))
        .user(env("PGUSER", "app_user"))
        .password(env("PGPASSWORD", ""))
        .connect_timeout(Duration::from_secs(5));
    let connections = if single {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        Connections::Single(tokio::sync::Mutex::new(client))
    } else {
        let manager = deadpool_postgres::Manager::new(config, NoTls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(pool_size)
            .build()?;
        // Opened before serving, as an app warms its pool at boot.
        let mut warm = Vec::with_capacity(pool_size);
        for _ in 0..pool_size {
            warm.push(pool.get().await?);
        }
        drop(warm);
        Connections::Pool(pool)
    };
    let tables = env(
        "RLSCTL_TENANT_TABLES",
        "customers,vehicles,appointments,services",
    )
    .split(',')
    .map(String::from)
    .collect();
    let app = Arc::new(App {
        connections,
        tables,
        allow_missing_tenant: args.iter().any(|a| a == "--allow-requests-without-tenant"),
        omit_security_headers: args.iter().any(|a| a == "--omit-security-headers"),
        broken,
        global_tenant: std::sync::Mutex::new(String::new()),
    });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // The tests read the port from this line.
    println!("listening on http://{}", listener.local_addr()?);
    // Every connection is served on its own task, every request concurrently.
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(serve(&app, &request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Checks the request, takes a connection, runs it, adds the security headers.
async fn serve(app: &App, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut response = route(app, request).await;
    if !app.omit_security_headers {
        for (name, value) in SECURITY_HEADERS {
            response
                .headers_mut()
                .insert(name, hyper::header::HeaderValue::from_static(value));
        }
    }
    response
}

async fn route(app: &App, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let tenant = request
        .headers()
        .get("X-Tenant-Id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let tenant = match tenant {
        Some(t) if !t.is_empty() => t,
        _ if app.allow_missing_tenant => String::new(),
        _ => return respond(400, json!({"error": "X-Tenant-Id header is required"})),
    };
    if request.method() != Method::GET {
        return respond(405, json!({"error": "method not allowed"}));
    }
    if app.broken == Broken::TenantInGlobal {
        *app.global_tenant.lock().unwrap() = tenant.clone();
    }
    // What a real handler does before its queries (authentication, parsing):
    // long enough for other requests to run meanwhile.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let tenant = match app.broken {
        Broken::TenantInGlobal => app.global_tenant.lock().unwrap().clone(),
        _ => tenant,
    };
    let path = request.uri().path();
    let result = match &app.connections {
        Connections::Single(client) => {
            handle(app, &*client.lock().await, &tenant, path, true).await
        }
        Connections::Pool(pool) if app.broken == Broken::TenantOnAnotherConnection => {
            let set = async {
                let first = pool.get().await?;
                first
                    .execute(
                        "SELECT set_config($1, $2, false)",
                        &[&TENANT_SETTING, &tenant],
                    )
                    .await?;
                Ok::<_, BoxError>(())
            }
            .await;
            match (set, pool.get().await) {
                (Ok(()), Ok(second)) => handle(app, &second, &tenant, path, false).await,
                (Err(e), _) => Err(e),
                (_, Err(e)) => Err(e.into()),
            }
        }
        Connections::Pool(pool) => match pool.get().await {
            Ok(client) => handle(app, &client, &tenant, path, true).await,
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(Some(body)) => respond(200, body),
        Ok(None) => respond(404, json!({"error": "not found"})),
        Err(e) => {
            eprintln!("request failed: {e}");
            respond(
                500,
                json!({"status": "unhealthy", "error": "database error"}),
            )
        }
    }
}

/// One request on one connection, in one transaction; with `set_tenant`, the
/// tenant is set for that transaction on that connection.
async fn handle(
    app: &App,
    db: &Client,
    tenant: &str,
    path: &str,
    set_tenant: bool,
) -> Result<Option<serde_json::Value>, BoxError> {
    db.batch_execute("BEGIN").await?;
    let result = async {
        if set_tenant {
            db.execute("SELECT set_config($1, $2, true)", &[&TENANT_SETTING, &tenant]).await?;
        }
        let body = match path {
            "/health/tenant-security" => {
                // The rows this request can see, summed over the tenant tables.
                let visible: Vec<String> = app
                    .tables
                    .iter()
                    .map(|t| format!("(SELECT count(*) FROM \"{}\")", t.replace('"', "\"\"")))
                    .collect();
                let row = db
                    .query_one(
                        &format!(
                            "SELECT current_user::text, session_user::text, current_setting($1, true),
                                    (SELECT count(*) FROM pg_class c WHERE c.relname = ANY($2::text[]) AND c.relrowsecurity),
                                    {}::bigint",
                            if visible.is_empty() { "0".to_string() } else { visible.join(" + ") }
                        ),
                        &[&TENANT_SETTING, &app.tables],
                    )
                    .await?;
                Some(json!({
                    "status": "healthy",
                    "database": {"user": row.get::<_, String>(0), "session_user": row.get::<_, String>(1),
                                 "tenant_context": row.get::<_, Option<String>>(2)},
                    "rls": {"enabled_tables": row.get::<_, i64>(3), "visible_rows": row.get::<_, i64>(4)},
                }))
            }
            "/customers" => {
                let rows = db.query("SELECT id, full_name FROM customers ORDER BY id", &[]).await?;
                Some(json!(rows.iter().map(|r| json!({"id": r.get::<_, i64>(0), "name": r.get::<_, String>(1)})).collect::<Vec<_>>()))
            }
            _ => None,
        };
        Ok::<_, tokio_postgres::Error>(body)
    }
    .await;
    // Read-only requests commit too: the tenant setting ends here either way.
    match result {
        Ok(body) => {
            db.batch_execute("COMMIT").await?;
            Ok(body)
        }
        Err(e) => {
            let _ = db.batch_execute("ROLLBACK").await;
            Err(e.into())
        }
    }
}
