//! A reference application for the rlsctl middleware contract.
//!
//! Every request:
//! 1. must carry `X-Tenant-Id` (400 otherwise, before touching the database);
//! 2. runs in one transaction, with the tenant set by
//!    `set_config('app.tenant_id', $1, true)` so it ends with the transaction
//!    and never leaks to the next request on the pooled connection;
//! 3. is answered with security headers.
//!
//! `GET /health/tenant-security` reports what the session looks like inside a
//! request, for `rlsctl verify --app-url`. `GET /customers` shows the pattern on
//! real data.
//!
//! Run it with the usual PG* variables (as the app role!):
//!   PGUSER=app_user PGPASSWORD=... cargo run --example reference_app -- --listen 127.0.0.1:8080
//!
//! `--allow-requests-without-tenant` and `--omit-security-headers` deliberately
//! break rules 1 and 3; they exist only so rlsctl's tests can show that verify
//! catches them.

use std::sync::Arc;

use serde_json::json;
use tiny_http::{Header, Method, Request, Response, Server};
use tokio::sync::Mutex;
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

struct App {
    db: Mutex<Client>,
    tables: Vec<String>,
    allow_missing_tenant: bool,
    omit_security_headers: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let allow_missing_tenant = args.iter().any(|a| a == "--allow-requests-without-tenant");
    let omit_security_headers = args.iter().any(|a| a == "--omit-security-headers");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let config = format!(
        "host={} port={} dbname={} user={} password='{}'",
        env("PGHOST", "127.0.0.1"),
        env("PGPORT", "5432"),
        env("PGDATABASE", "edgarautoshop"),
        env("PGUSER", "app_user"),
        env("PGPASSWORD", "")
            .replace('\\', "\\\\")
            .replace('\'', "\\'"),
    );
    let client = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
        tokio::spawn(connection);
        Ok::<_, tokio_postgres::Error>(client)
    })?;
    let tables = env(
        "RLSCTL_TENANT_TABLES",
        "customers,vehicles,appointments,services",
    )
    .split(',')
    .map(String::from)
    .collect();
    let app = Arc::new(App {
        db: Mutex::new(client),
        tables,
        allow_missing_tenant,
        omit_security_headers,
    });
    let server = Server::http(&listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // The tests read the port from this line.
    println!("listening on http://{}", server.server_addr());
    for request in server.incoming_requests() {
        let mut response = runtime.block_on(handle(&app, &request));
        if !app.omit_security_headers {
            for (name, value) in SECURITY_HEADERS {
                response.add_header(Header::from_bytes(name, value).unwrap());
            }
        }
        let _ = request.respond(response);
    }
    Ok(())
}

fn respond(status: u16, body: serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut response = Response::from_string(body.to_string()).with_status_code(status);
    response.add_header(Header::from_bytes("Content-Type", "application/json").unwrap());
    response
}

async fn handle(app: &App, request: &Request) -> Response<std::io::Cursor<Vec<u8>>> {
    let tenant = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("X-Tenant-Id"))
        .map(|h| h.value.as_str().to_string());
    let tenant = match tenant {
        Some(t) if !t.is_empty() => t,
        _ if app.allow_missing_tenant => String::new(),
        _ => return respond(400, json!({"error": "X-Tenant-Id header is required"})),
    };
    if request.method() != &Method::Get {
        return respond(405, json!({"error": "method not allowed"}));
    }
    let db = app.db.lock().await;
    let result = async {
        db.batch_execute("BEGIN").await?;
        db.execute("SELECT set_config($1, $2, true)", &[&TENANT_SETTING, &tenant]).await?;
        let body = match request.url() {
            "/health/tenant-security" => {
                let row = db
                    .query_one(
                        "SELECT current_user::text, session_user::text, current_setting($1, true),
                                (SELECT count(*) FROM pg_class c WHERE c.relname = ANY($2::text[]) AND c.relrowsecurity)",
                        &[&TENANT_SETTING, &app.tables],
                    )
                    .await?;
                Some(json!({
                    "status": "healthy",
                    "database": {"user": row.get::<_, String>(0), "session_user": row.get::<_, String>(1),
                                 "tenant_context": row.get::<_, Option<String>>(2)},
                    "rls": {"enabled_tables": row.get::<_, i64>(3)},
                }))
            }
            "/customers" => {
                let rows = db.query("SELECT id, full_name FROM customers ORDER BY id", &[]).await?;
                Some(json!(rows.iter().map(|r| json!({"id": r.get::<_, i64>(0), "name": r.get::<_, String>(1)})).collect::<Vec<_>>()))
            }
            _ => None,
        };
        // Read-only requests commit too: the tenant setting ends here either way.
        db.batch_execute("COMMIT").await?;
        Ok::<_, tokio_postgres::Error>(body)
    }
    .await;
    match result {
        Ok(Some(body)) => respond(200, body),
        Ok(None) => respond(404, json!({"error": "not found"})),
        Err(e) => {
            let _ = db.batch_execute("ROLLBACK").await;
            eprintln!("request failed: {e}");
            respond(
                500,
                json!({"status": "unhealthy", "error": "database error"}),
            )
        }
    }
}
