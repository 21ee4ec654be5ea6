//! `--via-ssh`, the runbook's fallback when SSM fails, against a real OpenSSH
//! server on 127.0.0.1 (Debian's openssh-server, installed by
//! scripts/ensure-sshd) with a throwaway host key and user key: the command
//! connects through the tunnel with TLS verified against the RDS endpoint
//! name, and ssh is gone afterwards, also after Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::*;

/// A throwaway sshd that lets the test's key in as the current user.
struct Sshd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

impl Sshd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        keygen(&path("host_key"));
        keygen(&path("user_key"));
        std::fs::copy(path("user_key.pub"), path("authorized_keys")).unwrap();
        // Its privilege-separation directory (made by the package's service,
        // which is not running here).
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = rlsctl::tunnel::free_local_port().unwrap();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\nLogLevel VERBOSE\n",
            path("host_key").display(),
            path("sshd.pid").display(),
            path("authorized_keys").display(),
        );
        std::fs::write(path("sshd_config"), config).unwrap();
        let child = std::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path("sshd.log")).unwrap())
            .spawn()
            .expect("sshd starts (apt-get install openssh-server)");
        let sshd = Self { child, dir, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "sshd did not listen: {}",
                sshd.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        sshd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// An ssh_config for `Host bastion`: this server, the test's key, its host key known.
    fn client_config(&self, key: &str) -> PathBuf {
        let path = |name: &str| self.dir.path().join(name);
        let host_key = std::fs::read_to_string(path("host_key.pub")).unwrap();
        std::fs::write(path("known_hosts"), format!("bastion {host_key}")).unwrap();
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
            .name;
        let config = format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User {user}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             HostKeyAlias bastion\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
            self.port,
            path(key).display(),
            path("known_hosts").display(),
        );
        let file = path(&format!("ssh_config_{key}"));
        std::fs::write(&file, config).unwrap();
        file
    }
}

/// Whether an ssh process started with `config` is running.
fn ssh_running(config: &Path) -> bool {
    let wanted = config.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&wanted) && !stat.contains(") Z ")
        })
}

/// The demo on an RDS-shaped server with TLS (certificate for localhost from
/// the test CA), applied when asked; the certificates.
async fn tls_demo(applied: bool) -> (TestDb, crate::apply::ServerTlsFiles) {
    let certs = crate::apply::ServerTlsFiles::new();
    let options = rlsctl::sandbox::Options {
        shape: rlsctl::sandbox::Shape::RdsMaster,
        tls: Some(certs.server_tls()),
        ..Default::default()
    };
    let t = TestDb::with(options, true).await;
    if applied {
        t.applied().await;
    }
    (t, certs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_via_ssh_verifies_tls_against_the_endpoint_and_leaves_no_ssh_behind() {
    if !Path::new("/usr/sbin/sshd").exists() {
        panic!("no /usr/sbin/sshd: scripts/ensure-sshd installs it");
    }
    let (t, certs) = tls_demo(true).await;
    let sshd = Sshd::start();
    let config = sshd.client_config("user_key");
    let port = t.sandbox.port.to_string();
    let ca = certs.ca_path();
    let config_text = config.display().to_string();
    // The bastion dials "localhost" (the RDS endpoint here); TLS is verified
    // against that name through the tunnel, as through SSM.
    let env = [
        AS_APP[0],
        AS_APP[1],
        ("RDS_ENDPOINT", "localhost"),
        ("RDS_PORT", port.as_str()),
        ("PGSSLROOTCERT", ca.as_str()),
        ("RLSCTL_SSH_CONFIG", config_text.as_str()),
        ("PGPORT", "1"),
    ];
    let run = t
        .run_env(
            &[
                "verify",
                "--via-ssh",
                "bastion",
                "--tenant",
                TENANTS[0],
                "--tenant",
                TENANTS[1],
                "-v",
            ],
            &env,
        )
        .await;
    run.expect(0);
    // PGPORT is 1: only the tunnel reaches the server; sshd let the key in.
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
    assert!(
        !ssh_running(&config),
        "ssh is still running after the command"
    );
    // A name the certificate was not issued for is refused (verify-full).
    let wrong_name = [
        env.as_slice(),
        &[("RLSCTL_TLS_SERVER_NAME", "db.elsewhere.example")],
    ]
    .concat();
    let run = t
        .run_env(&["verify", "--via-ssh", "bastion"], &wrong_name)
        .await;
    run.expect(2);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    assert!(!ssh_running(&config));
    // A config that multiplexes and forks after authentication: the forward
    // still ends with the command, no master or forked ssh left behind.
    let muxed = sshd.dir.path().join("ssh_config_muxed");
    std::fs::write(
        &muxed,
        format!(
            "{}  ControlMaster auto\n  ControlPersist 10m\n  ControlPath {}/cm-%C\n  ForkAfterAuthentication yes\n",
            std::fs::read_to_string(&config).unwrap(),
            sshd.dir.path().display()
        ),
    )
    .unwrap();
    let muxed_text = muxed.display().to_string();
    let with_mux = [
        env.as_slice(),
        &[("RLSCTL_SSH_CONFIG", muxed_text.as_str())],
    ]
    .concat();
    let run = t
        .run_env(&["monitor", "--via-ssh", "bastion"], &with_mux)
        .await;
    run.expect(0);
    assert!(
        !ssh_running(&muxed),
        "ssh left running with a multiplexing config"
    );
    // A key the bastion refuses: batch mode, so no prompt hangs a cron job;
    // ssh's own words say why.
    std::fs::remove_file(sshd.dir.path().join("authorized_keys")).unwrap();
    let run = t.run_env(&["verify", "--via-ssh", "bastion"], &env).await;
    run.expect(2);
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
    assert!(!ssh_running(&config));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_apply_via_ssh_changes_nothing_and_stops_ssh() {
    let (t, certs) = tls_demo(false).await;
    let sshd = Sshd::start();
    let config = sshd.client_config("user_key");
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let blocker = t.hold_lock("vehicles").await;
    let env = [
        ("RDS_ENDPOINT", "localhost".to_string()),
        ("RDS_PORT", t.sandbox.port.to_string()),
        ("PGSSLROOTCERT", certs.ca_path()),
        ("RLSCTL_SSH_CONFIG", config.display().to_string()),
        ("PGPORT", "1".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let mut child = apply_waiting_on_a_lock(&t, &su, &["--via-ssh", "bastion"], &env).await;
    assert!(ssh_running(&config));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(exit_code(&mut child).await, Some(130));
    assert!(!ssh_running(&config), "ssh outlived Ctrl-C");
    blocker.simple("ROLLBACK").await.unwrap();
    assert_eq!(
        catalog_snapshot(&su).await,
        before,
        "the interrupted apply changed something"
    );
}

/// A fleet whose targets each name their own tunnel (`via-ssh` in the
/// targets file): each is checked through its own forward, to its own
/// endpoint, and its result names where it was checked; the one whose
/// endpoint does not answer is an error, never the other's clean report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_reaches_each_target_through_its_own_ssh_tunnel() {
    if !Path::new("/usr/sbin/sshd").exists() {
        panic!("no /usr/sbin/sshd: scripts/ensure-sshd installs it");
    }
    let (t, certs) = tls_demo(true).await;
    let sshd = Sshd::start();
    let config = sshd.client_config("user_key");
    let targets = t.sandbox.dir().join("targets.toml");
    std::fs::write(
        &targets,
        format!(
            "[defaults]\nuser = \"app_user\"\npassword-from = \"env:APP_PW\"\nssh-config = \"{}\"\n\n\
             [[target]]\nname = \"reached\"\nvia-ssh = {{ bastion = \"bastion\", endpoint = \"localhost\", port = {} }}\n\n\
             [[target]]\nname = \"closed\"\nvia-ssh = {{ bastion = \"bastion\", endpoint = \"localhost\", port = 1 }}\n",
            config.display(),
            t.sandbox.port
        ),
    )
    .unwrap();
    let ca = certs.ca_path();
    let env = [
        ("APP_PW", APP_PASSWORD),
        ("PGSSLROOTCERT", ca.as_str()),
        ("PGPORT", "1"),
    ];
    let run = t
        .run_env(
            &[
                "monitor",
                "--targets",
                targets.to_str().unwrap(),
                "--target-timeout",
                "20s",
                "--format",
                "json",
            ],
            &env,
        )
        .await;
    run.expect(2);
    let doc = run.json();
    let result = |name: &str| {
        doc["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == name)
            .unwrap_or_else(|| panic!("no {name} in {doc}"))
            .clone()
    };
    let (reached, closed) = (result("reached"), result("closed"));
    assert_eq!(reached["status"], "clean", "{doc}\n{}", run.stderr);
    assert_eq!(
        reached["checked"],
        format!("localhost:{} via ssh bastion", t.sandbox.port)
    );
    assert_eq!(closed["status"], "error", "{doc}");
    assert_eq!(closed["checked"], "localhost:1 via ssh bastion");
    assert!(!ssh_running(&config), "ssh left running after the fleet");
}
