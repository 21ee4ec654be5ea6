//! AWS-native credentials (#23): Secrets Manager and the RDS-managed master
//! secret through a local double of both APIs, one credential chain for every
//! AWS call, and IAM auth tokens, checked against a SigV4 computation written
//! out here at a fake RDS endpoint that records the password it is sent.

use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::aws_double::*;
use crate::support::*;

/// Runs rlsctl with the fake account's environment and `extra`.
async fn run_aws(
    t: &TestDb,
    args: &[&str],
    env: &[(String, String)],
    extra: &[(&str, &str)],
) -> Run {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    t.run_env(args, &all).await
}

/// The master's secret as RDS writes it.
fn master_secret(t: &TestDb) -> String {
    json!({"username": "postgres", "password": t.sandbox.operator_password.expose()}).to_string()
}

const APPLY_DRY_RUN: [&str; 8] = [
    "apply",
    "--dry-run",
    "--format",
    "json",
    "--app-password-from",
    "env:APP_PW",
    "--admin-password-from",
    "env:ADMIN_PW",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_secret_gives_the_user_and_password_and_a_plain_one_the_password() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let mut world = World::default();
    world
        .secrets
        .insert("prod/rlsctl/master".into(), vec![master_secret(&t)]);
    world
        .secrets
        .insert("prod/rlsctl/app".into(), vec![APP_PASSWORD.into()]);
    let double = AwsDouble::start(world);
    let aws = FakeAws::new(&double.url);
    // The master's JSON secret and no user given: monitor connects as the
    // secret's user, not its default (the app role). PGPASSWORD is wrong, so
    // only the secret can have let it in.
    let run = run_aws(
        &t,
        &[
            "monitor",
            "--format",
            "json",
            "--password-from",
            "secretsmanager:prod/rlsctl/master",
        ],
        &aws.env,
        &[("PGPASSWORD", "wrong")],
    )
    .await;
    assert_ne!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.json()["database"]["user"], "postgres", "{}", run.stdout);
    // A plain-string secret is the password, for the user given.
    let run = run_aws(
        &t,
        &[
            "monitor",
            "--format",
            "json",
            "--password-from",
            "secretsmanager:prod/rlsctl/app",
        ],
        &aws.env,
        &[("PGUSER", "app_user"), ("PGPASSWORD", "wrong")],
    )
    .await;
    run.expect(0);
    assert_eq!(run.json()["database"]["user"], "app_user");
    // Both read with the default chain's keys, in its region.
    let calls = double.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in &calls {
        assert_eq!(call.operation, "secretsmanager.GetSecretValue");
        assert!(
            call.credential.starts_with(&format!("{DEFAULT_KEY}/")),
            "{call:?}"
        );
        assert!(
            call.credential
                .ends_with("/us-west-2/secretsmanager/aws4_request"),
            "{call:?}"
        );
    }
    // A secret that does not exist: a clear error, exit 2.
    let run = run_aws(
        &t,
        &["monitor", "--password-from", "secretsmanager:prod/nope"],
        &aws.env,
        &[("PGUSER", "app_user")],
    )
    .await;
    run.expect(2);
    assert!(
        run.stderr.contains("Secrets Manager secret prod/nope")
            && run.stderr.contains("ResourceNotFoundException"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_master_finds_the_secret_of_an_instance_and_of_a_cluster() {
    let t = TestDb::demo_rds().await;
    let secret = |arn: &str, status: &str| MasterSecret {
        arn: arn.into(),
        status: status.into(),
    };
    let (instance_arn, cluster_arn) = (
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:rds!db-1111-aaaa",
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:rds!cluster-2222-bbbb",
    );
    let mut world = World::default();
    world
        .instances
        .insert("mydb".into(), (Some(secret(instance_arn, "active")), None));
    world
        .instances
        .insert("aurora-1".into(), (None, Some("prod-cluster".into())));
    world.instances.insert(
        "busy".into(),
        (
            Some(secret(
                "arn:aws:secretsmanager:us-west-2:1:secret:rds!db-busy",
                "rotating",
            )),
            None,
        ),
    );
    world
        .clusters
        .insert("prod-cluster".into(), secret(cluster_arn, "active"));
    for arn in [instance_arn, cluster_arn] {
        world.secrets.insert(arn.into(), vec![master_secret(&t)]);
    }
    let double = AwsDouble::start(world);
    let aws = FakeAws::new(&double.url);
    let mut args = APPLY_DRY_RUN.to_vec();
    args.extend(["--password-from", "rds-master"]);
    // An instance, found from the endpoint's first label.
    let run = run_aws(
        &t,
        &args,
        &aws.env,
        &[
            ("PGPASSWORD", "wrong"),
            ("RDS_ENDPOINT", "mydb.abc123.us-west-2.rds.amazonaws.com"),
        ],
    )
    .await;
    run.expect(0);
    assert_eq!(
        double.operations(),
        ["rds.DescribeDBInstances", "secretsmanager.GetSecretValue"]
    );
    assert!(double.calls()[1].body.contains(instance_arn));
    // An Aurora instance: the secret is its cluster's.
    let run = run_aws(
        &t,
        &args,
        &aws.env,
        &[("PGPASSWORD", "wrong"), ("RDS_INSTANCE_ID", "aurora-1")],
    )
    .await;
    run.expect(0);
    // A cluster endpoint: no such instance, so the cluster.
    let run = run_aws(
        &t,
        &args,
        &aws.env,
        &[
            ("PGPASSWORD", "wrong"),
            (
                "RDS_ENDPOINT",
                "prod-cluster.cluster-abc123.us-west-2.rds.amazonaws.com",
            ),
        ],
    )
    .await;
    run.expect(0);
    assert_eq!(
        double.operations()[2..],
        [
            "rds.DescribeDBInstances",
            "rds.DescribeDBClusters",
            "secretsmanager.GetSecretValue",
            "rds.DescribeDBInstances",
            "rds.DescribeDBClusters",
            "secretsmanager.GetSecretValue",
        ]
    );
    for call in double
        .calls()
        .iter()
        .filter(|c| c.operation.starts_with("rds."))
    {
        assert!(
            call.credential.ends_with("/us-west-2/rds/aws4_request"),
            "{call:?}"
        );
    }
    // A secret that is not active: an error naming it, and no read.
    let reads = double.calls().len();
    let run = run_aws(&t, &args, &aws.env, &[("RDS_INSTANCE_ID", "busy")]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("rds!db-busy") && run.stderr.contains("rotating, not active"),
        "{}",
        run.stderr
    );
    assert_eq!(double.calls().len(), reads + 1, "only the describe");
    // No instance to look up: said so.
    let run = run_aws(&t, &args, &aws.env, &[]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("rds-master needs the instance"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_under_the_run_is_read_again_once() {
    let t = TestDb::demo_rds().await;
    let stale = json!({"username": "postgres", "password": "rotated-away-7f3e"}).to_string();
    let mut world = World::default();
    // The first read gets the value rotation is about to replace.
    world
        .secrets
        .insert("rotating".into(), vec![stale.clone(), master_secret(&t)]);
    world.secrets.insert("broken".into(), vec![stale]);
    let double = AwsDouble::start(world);
    let aws = FakeAws::new(&double.url);
    let mut args = APPLY_DRY_RUN.to_vec();
    args.extend(["--password-from", "secretsmanager:rotating"]);
    let run = run_aws(&t, &args, &aws.env, &[("RLSCTL_LOG", "trace")]).await;
    run.expect(0);
    assert_eq!(double.operations().len(), 2, "read, rejected, read again");
    assert!(
        run.stderr.contains("reading the secret again"),
        "{}",
        run.stderr
    );
    // Neither value reaches the output, at trace level.
    for secret in ["rotated-away-7f3e", t.sandbox.operator_password.expose()] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret in the output"
        );
    }
    // A secret that is wrong twice: one more read, then the error.
    let before = double.operations().len();
    args.pop();
    args.push("secretsmanager:broken");
    let run = run_aws(&t, &args, &aws.env, &[]).await;
    run.expect(2);
    assert_eq!(double.operations().len(), before + 2);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("rotated-away-7f3e"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_and_region_flags_reach_every_aws_call() {
    let t = TestDb::demo_rds().await;
    let arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rds!db-3333";
    let mut world = World::default();
    world.instances.insert(
        "mydb".into(),
        (
            Some(MasterSecret {
                arn: arn.into(),
                status: "active".into(),
            }),
            None,
        ),
    );
    world.secrets.insert(arn.into(), vec![master_secret(&t)]);
    world
        .parameters
        .insert("/edgar/prod/app_user".into(), APP_PASSWORD.into());
    let double = AwsDouble::start(world);
    let aws = FakeAws::new(&double.url);
    // The master's password from RDS's secret, the app role's from Parameter
    // Store (read for a real apply only): three services in one run.
    let mut args: Vec<&str> = APPLY_DRY_RUN
        .iter()
        .copied()
        .filter(|a| !["env:APP_PW", "--app-password-from", "--dry-run"].contains(a))
        .collect();
    args.extend(["--app-password-from", "ssm:/edgar/prod/app_user"]);
    args.extend([
        "--password-from",
        "rds-master",
        "--db-instance",
        "mydb",
        "-v",
    ]);
    // AWS_PROFILE names the profile: its keys and its region.
    let run = run_aws(&t, &args, &aws.with_profile_only(), &[]).await;
    run.expect(0);
    assert!(
        run.stderr.contains("eu-central-1"),
        "the region is shown at -v: {}",
        run.stderr
    );
    // --profile and --region on the command line: the region given wins.
    let mut flagged = args.clone();
    flagged.extend(["--profile", "ops", "--region", "ap-south-1"]);
    let without_profile: Vec<(String, String)> = aws
        .with_profile_only()
        .into_iter()
        .filter(|(k, _)| k != "AWS_PROFILE")
        .collect();
    run_aws(&t, &flagged, &without_profile, &[]).await.expect(0);
    // And the RDS log files of shadow report --rds (the double has none: a
    // log that holds no entry shows nothing clean, exit 2).
    let logs = ["shadow", "report", "--rds", "--db-instance", "mydb"];
    let run = run_aws(&t, &logs, &aws.with_profile_only(), &[]).await;
    run.expect(2);
    assert!(run.stderr.contains("holds no log entry"), "{}", run.stderr);
    let calls = double.calls();
    let operations: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    // Connecting first, then the app role's password.
    let one_apply = [
        "rds.DescribeDBInstances",
        "secretsmanager.GetSecretValue",
        "AmazonSSM.GetParameter",
    ];
    assert_eq!(
        operations,
        [&one_apply[..], &one_apply, &["rds.DescribeDBLogFiles"]].concat()
    );
    let regions = ["eu-central-1"; 3]
        .into_iter()
        .chain(["ap-south-1"; 3])
        .chain(["eu-central-1"]);
    for (call, region) in calls.iter().zip(regions) {
        assert!(
            call.credential.starts_with(&format!("{PROFILE_KEY}/")),
            "{call:?}"
        );
        assert!(call.credential.contains(&format!("/{region}/")), "{call:?}");
    }
    // No region anywhere: a clear error, never a silent us-east-1.
    let no_region: Vec<(String, String)> = aws
        .env
        .iter()
        .filter(|(k, _)| k != "AWS_REGION")
        .cloned()
        .collect();
    let run = run_aws(&t, &args, &no_region, &[]).await;
    run.expect(2);
    assert!(run.stderr.contains("no AWS region"), "{}", run.stderr);
}

/// HMAC-SHA256, written out (RFC 2104) for the independent SigV4 check.
fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::digest([pad(0x36), data.to_vec()].concat());
    Sha256::digest([pad(0x5c), inner.to_vec()].concat()).to_vec()
}

/// SigV4's URI encoding: unreserved characters as they are, the rest %XX.
fn sigv4_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks an RDS auth token the way RDS does, with the algorithm written out:
/// `host:port/?Action=connect&DBUser=...&X-Amz-...`, signed for
/// `host:port` with `secret_key` in `region`; returns its parameters.
fn check_token(
    token: &str,
    host_port: &str,
    user: &str,
    key: &str,
    region: &str,
) -> Vec<(String, String)> {
    let (authority, query) = token.split_once("/?").expect("host:port/?query");
    assert_eq!(
        authority, host_port,
        "signed for the RDS endpoint and its port"
    );
    let params: Vec<(String, String)> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap())
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("Action"), "connect");
    assert_eq!(get("DBUser"), user);
    assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
    assert_eq!(get("X-Amz-Expires"), "900", "valid 15 minutes");
    assert_eq!(get("X-Amz-SignedHeaders"), "host");
    let amz_date = get("X-Amz-Date");
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/rds-db/aws4_request");
    assert_eq!(get("X-Amz-Credential"), format!("{key}/{scope}"));
    // Made just now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let made = chrono_free_epoch(&amz_date);
    assert!(now.abs_diff(made) < 120, "X-Amz-Date {amz_date} is not now");
    let mut canonical: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (sigv4_encode(k), sigv4_encode(v)))
        .collect();
    canonical.sort();
    let query = canonical
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let request = format!(
        "GET\n/\n{query}\nhost:{host_port}\n\nhost\n{}",
        hex::encode(Sha256::digest(b""))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(request.as_bytes()))
    );
    let mut signing = hmac(format!("AWS4{SECRET_KEY}").as_bytes(), date.as_bytes());
    for part in [region, "rds-db", "aws4_request"] {
        signing = hmac(&signing, part.as_bytes());
    }
    assert_eq!(
        get("X-Amz-Signature"),
        hex::encode(hmac(&signing, to_sign.as_bytes())),
        "the signature"
    );
    params
}

/// Seconds since the epoch of an `X-Amz-Date` (`20261127T170102Z`), UTC.
fn chrono_free_epoch(stamp: &str) -> u64 {
    let n = |range: std::ops::Range<usize>| stamp[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    (days * 86400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)) as u64
}

/// A fake RDS endpoint for IAM authentication: TLS with the test CA's
/// certificate for db.internal.example; it asks for a cleartext password (as
/// RDS does for a member of rds_iam), records the user and password, and
/// refuses as RDS refuses a token it does not accept.
async fn fake_iam_rds(
    tls: &crate::apply::ServerTlsFiles,
) -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let acceptor = tls.acceptor();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let mut ssl_request = [0u8; 8];
                socket.read_exact(&mut ssl_request).await.ok()?;
                socket.write_all(b"S").await.ok()?;
                let mut stream = acceptor.accept(socket).await.ok()?;
                let length = stream.read_u32().await.ok()? as usize;
                let mut startup = vec![0u8; length - 4];
                stream.read_exact(&mut startup).await.ok()?;
                let fields: Vec<String> = startup[4..]
                    .split(|b| *b == 0)
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                let user = fields
                    .iter()
                    .position(|f| f == "user")
                    .map(|i| fields[i + 1].clone())
                    .unwrap_or_default();
                // AuthenticationCleartextPassword.
                stream
                    .write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])
                    .await
                    .ok()?;
                let kind = stream.read_u8().await.ok()?;
                assert_eq!(kind, b'p');
                let length = stream.read_u32().await.ok()? as usize;
                let mut password = vec![0u8; length - 4];
                stream.read_exact(&mut password).await.ok()?;
                password.pop();
                record
                    .lock()
                    .unwrap()
                    .push((user.clone(), String::from_utf8(password).unwrap()));
                let mut error = Vec::new();
                for (field, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', "28P01")] {
                    error.push(field);
                    error.extend_from_slice(value.as_bytes());
                    error.push(0);
                }
                error.push(b'M');
                error.extend_from_slice(
                    format!("PAM authentication failed for user \"{user}\"").as_bytes(),
                );
                error.extend_from_slice(&[0, 0]);
                let mut message = vec![b'E'];
                message.extend_from_slice(&(error.len() as u32 + 4).to_be_bytes());
                message.extend_from_slice(&error);
                stream.write_all(&message).await.ok()?;
                stream.shutdown().await.ok()
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_token_through_the_tunnel_is_signed_for_the_rds_endpoint_and_never_shown() {
    let t = TestDb::demo_rds().await;
    let tls = crate::apply::ServerTlsFiles::new();
    let (fake_port, seen) = fake_iam_rds(&tls).await;
    let tunnel = crate::tunnel::Aws::new(&t);
    let accounts = FakeAws::new("http://127.0.0.1:9");
    // The SSM double and the stand-in plugin, forwarding to the fake RDS; the
    // profile's keys and region for every AWS call (the session and the token).
    let mut env: Vec<(String, String)> = tunnel
        .with(&[
            ("STANDIN_DESTINATION", &format!("127.0.0.1:{fake_port}")),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", &tls.ca_path()),
            ("PGUSER", "app_user"),
            ("RLSCTL_LOG", "trace"),
        ])
        .into_iter()
        .filter(|(k, _)| {
            ![
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE",
            ]
            .contains(&k.as_str())
        })
        .collect();
    env.extend(accounts.with_profile_only().into_iter().filter(|(k, _)| {
        k.starts_with("AWS_CONFIG") || k.starts_with("AWS_SHARED") || k == "AWS_PROFILE"
    }));
    let run = crate::tunnel::run_with(
        &t,
        &["verify", "--via-ssm", "--iam-auth", "--tenant", "a"],
        &env,
    )
    .await;
    run.expect(2);
    assert!(
        run.stderr.contains("PAM authentication failed"),
        "{}",
        run.stderr
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (user, token) = &seen[0];
    assert_eq!(user, "app_user");
    // Signed for RDS_ENDPOINT:5432, never the tunnel's 127.0.0.1:<local port>.
    check_token(
        token,
        "db.internal.example:5432",
        "app_user",
        PROFILE_KEY,
        "eu-central-1",
    );
    // The SSM calls used the same profile and region.
    let scopes = tunnel.double.credentials.lock().unwrap().clone();
    assert!(!scopes.is_empty());
    for scope in scopes {
        assert!(
            scope.starts_with(PROFILE_KEY) && scope.contains("/eu-central-1/ssm/"),
            "{scope}"
        );
    }
    // The token is nowhere in the output, at trace level.
    let signature = token.rsplit('=').next().unwrap();
    assert!(
        !run.stdout.contains(signature) && !run.stderr.contains(signature),
        "the token was shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_authentication_refuses_a_connection_without_tls_or_an_endpoint_name() {
    let t = TestDb::demo_rds().await;
    for mode in ["disable", "prefer"] {
        let run = t
            .run_env(
                &[
                    "verify",
                    "--iam-auth",
                    "--rds-endpoint",
                    "db.internal.example",
                ],
                &[("PGSSLMODE", mode)],
            )
            .await;
        run.expect(2);
        assert!(
            run.stderr.contains(&format!("sslmode {mode} is refused")),
            "{}",
            run.stderr
        );
    }
    let run = t.run(&["verify", "--iam-auth"]).await;
    run.expect(2);
    assert!(run.stderr.contains("set RDS_ENDPOINT"), "{}", run.stderr);
    // And not with a password source at once.
    let run = t
        .run(&["verify", "--iam-auth", "--password-from", "env:X"])
        .await;
    run.expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_app_iam_grants_rds_iam_and_verify_reports_the_method() {
    let t = TestDb::demo_rds().await;
    let apply_iam = [
        "apply",
        "--app-iam",
        "--admin-password-from",
        "env:ADMIN_PW",
        "--format",
        "json",
    ];
    t.run(&apply_iam).await.expect(0);
    let su = t.superuser().await;
    let members = "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
                   JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = 'rds_iam' AND r.rolname = 'app_user'";
    assert_eq!(count(&su, members).await, 1);
    // Applying again changes nothing.
    let again = t.run(&apply_iam).await;
    again.expect(0);
    assert_eq!(again.json()["summary"]["changes"], 0, "{}", again.stdout);
    // verify says how the app role logs in (here it still can with a password:
    // only RDS enforces IAM for members of rds_iam).
    t.sql(&format!(
        "ALTER ROLE app_user PASSWORD {}",
        rlsctl::model::sql::quote_literal(APP_PASSWORD)
    ))
    .await;
    let (run, doc) = crate::verify::verify(&t, &[]).await;
    run.expect(0);
    assert!(
        crate::verify::details(&doc, "ROLE001").contains("logs in with IAM auth tokens"),
        "{}",
        run.stdout
    );
}
