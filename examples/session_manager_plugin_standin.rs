//! A stand-in for AWS's `session-manager-plugin`, for rlsctl's tests only (it is
//! not part of the rlsctl binary). It honours the contract in
//! shared/reference/session-manager-plugin.md: the same argv and environment
//! handoff, the same output lines, SIGINT ends the session and exits 0, SIGTERM
//! kills it (the session is left open), failures print
//! `Cannot perform start session: ...` and exit 0. Instead of a websocket to an
//! agent it forwards TCP itself, to `STANDIN_DESTINATION` or host:portNumber.
//!
//! Knobs for tests (environment): STANDIN_PLUGIN_VERSION, STANDIN_FAIL (message),
//! STANDIN_NEVER_READY, STANDIN_EXIT_AFTER_MS, STANDIN_ARGV_LOG (file),
//! STANDIN_PID_FILE (file), STANDIN_DESTINATION (host:port).

// A test tool: a panic is its failure, and says where.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(unsafe_code)] // signal(2): the real plugin ignores SIGINT, SIGTSTP and SIGQUIT; so must its stand-in

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 2 && args[1] == "--version" {
        println!(
            "{}",
            std::env::var("STANDIN_PLUGIN_VERSION").unwrap_or_else(|_| "1.2.650.0".into())
        );
        return;
    }
    if args.len() == 1 {
        println!("\nThe Session Manager plugin was installed successfully. Use the AWS CLI to start a session.\n");
        return;
    }
    if let Ok(path) = std::env::var("STANDIN_ARGV_LOG") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let handoff = std::env::var("AWS_SSM_START_SESSION_RESPONSE").is_ok();
        writeln!(file, "argv={}", serde_json::to_string(&args).unwrap()).unwrap();
        writeln!(file, "env_handoff={handoff}").unwrap();
    }
    if let Ok(path) = std::env::var("STANDIN_PID_FILE") {
        std::fs::write(path, std::process::id().to_string()).unwrap();
    }
    // args[1]: the response JSON, or the name of the variable that holds it.
    let response = if args[1].starts_with("AWS_SSM_START_SESSION_RESPONSE") {
        let value = std::env::var(&args[1]).expect("the response variable is set");
        std::env::remove_var(&args[1]);
        value
    } else {
        args[1].clone()
    };
    let response: serde_json::Value = serde_json::from_str(&response).expect("response JSON");
    let session_id = response["SessionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_region, operation, _profile) = (&args[2], &args[3], &args[4]);
    assert_eq!(operation, "StartSession");
    let request: serde_json::Value = serde_json::from_str(&args[5]).expect("request JSON");
    // The real plugin casts Target unchecked and crashes without it.
    let _target = request["Target"].as_str().expect("Target");
    let parameters = &request["Parameters"];
    let first = |key: &str| parameters[key][0].as_str().unwrap_or_default().to_string();
    let (host, port, local_port) = (first("host"), first("portNumber"), first("localPortNumber"));

    if let Ok(message) = std::env::var("STANDIN_FAIL") {
        say(&format!("Cannot perform start session: {message}\n"));
        return;
    }
    for signal in [libc::SIGINT, libc::SIGTSTP, libc::SIGQUIT] {
        // SAFETY: installing a handler that only stores to an atomic.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
    say(&format!(
        "\nStarting session with SessionId: {session_id}\n"
    ));
    let listener = if std::env::var("STANDIN_NEVER_READY").is_ok() {
        None
    } else {
        let bind = format!(
            "127.0.0.1:{}",
            if local_port.is_empty() {
                "0"
            } else {
                &local_port
            }
        );
        match TcpListener::bind(&bind) {
            Ok(listener) => Some(listener),
            Err(e) => {
                say(&format!(
                    "Cannot perform start session: listen tcp {bind}: bind: {e}\n"
                ));
                return;
            }
        }
    };
    if let Some(listener) = &listener {
        let port = listener.local_addr().unwrap().port();
        say(&format!("Port {port} opened for sessionId {session_id}."));
        say("\nWaiting for connections...\n");
        listener.set_nonblocking(true).unwrap();
    }
    let destination = std::env::var("STANDIN_DESTINATION").unwrap_or(format!("{host}:{port}"));
    let exit_after = std::env::var("STANDIN_EXIT_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let started = Instant::now();
    loop {
        if STOP.load(Ordering::SeqCst) {
            say("\nTerminate signal received, exiting.\n");
            say(&format!("Exiting session with sessionId: {session_id}.\n"));
            return;
        }
        if exit_after.is_some_and(|after| started.elapsed() > after) {
            say(&format!("Session: {session_id} timed out.\n"));
            return;
        }
        if let Some(Ok((client, _))) = listener.as_ref().map(|l| l.accept()) {
            say(&format!("Connection accepted for session [{session_id}]\n"));
            match TcpStream::connect(&destination) {
                Ok(server) => forward(client, server),
                Err(_) => say("Connection to destination port failed, check SSM Agent logs.\n"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn forward(client: TcpStream, server: TcpStream) {
    client.set_nonblocking(false).unwrap();
    for (mut from, mut to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ] {
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buffer) {
                if n == 0 || to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    }
}
