//! One local double for the AWS APIs the credential sources call, for the
//! real AWS SDK (pointed at it with `AWS_ENDPOINT_URL`): Secrets Manager and
//! Parameter Store (JSON protocol, `X-Amz-Target: <service>.<Operation>`) and
//! RDS (Query protocol, `Action=<Operation>`; its log files are listed empty). It records every request with the
//! credential scope it was signed with, so tests see which credentials and
//! region each call used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `secretsmanager.GetSecretValue`, `rds.DescribeDBInstances`, ...
    pub operation: String,
    /// The request body (JSON for Secrets Manager, a form for RDS).
    pub body: String,
    /// The SigV4 credential scope: `KEY/DATE/REGION/SERVICE/aws4_request`.
    pub credential: String,
}

/// A master secret as RDS describes it.
#[derive(Debug, Clone)]
pub struct MasterSecret {
    /// Its ARN.
    pub arn: String,
    /// `active`, `creating`, `rotating`, `impaired`.
    pub status: String,
}

/// What the double knows.
#[derive(Debug, Default)]
pub struct World {
    /// Secret id (name or ARN) -> its values: each read returns the first, and
    /// drops it while more are left (rotation replaces it after the read).
    pub secrets: HashMap<String, Vec<String>>,
    /// DB instance id -> (its master secret, its cluster).
    pub instances: HashMap<String, (Option<MasterSecret>, Option<String>)>,
    /// DB cluster id -> its master secret.
    pub clusters: HashMap<String, MasterSecret>,
    /// Parameter Store: name -> value.
    pub parameters: HashMap<String, String>,
}

/// The running double.
pub struct AwsDouble {
    /// Its URL (for `AWS_ENDPOINT_URL`).
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    server: Arc<tiny_http::Server>,
}

impl AwsDouble {
    /// Starts the double with `world`.
    pub fn start(world: World) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let world = Arc::new(Mutex::new(world));
        let (s, c, w) = (server.clone(), calls.clone(), world.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let header = |name: &'static str| {
                    request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv(name))
                        .map(|h| h.value.as_str().to_string())
                        .unwrap_or_default()
                };
                let (target, authorization) = (header("X-Amz-Target"), header("Authorization"));
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let operation = if target.is_empty() {
                    format!("rds.{}", form(&body, "Action"))
                } else {
                    target.clone()
                };
                let credential = authorization
                    .split("Credential=")
                    .nth(1)
                    .and_then(|c| c.split(',').next())
                    .unwrap_or_default()
                    .to_string();
                c.lock().unwrap().push(Call {
                    operation: operation.clone(),
                    body: body.clone(),
                    credential,
                });
                let (status, answer, content_type) =
                    answer(&mut w.lock().unwrap(), &operation, &body);
                let response = tiny_http::Response::from_string(answer)
                    .with_status_code(status)
                    .with_header(
                        tiny_http::Header::from_bytes("Content-Type", content_type).unwrap(),
                    );
                let _ = request.respond(response);
            }
        });
        Self { url, calls, server }
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The operations, in order.
    pub fn operations(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.operation).collect()
    }
}

impl Drop for AwsDouble {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A form field of a Query-protocol body (percent-decoded).
fn form(body: &str, key: &str) -> String {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| decode(v))
        .unwrap_or_default()
}

/// Percent- and plus-decoding of a form or query value.
pub fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) =
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const JSON: &str = "application/x-amz-json-1.1";
const XML: &str = "text/xml";

fn answer(world: &mut World, operation: &str, body: &str) -> (u16, String, &'static str) {
    match operation {
        "secretsmanager.GetSecretValue" => {
            let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let id = request["SecretId"].as_str().unwrap_or_default().to_string();
            match world.secrets.get_mut(&id) {
                Some(values) if !values.is_empty() => {
                    let value = if values.len() > 1 {
                        values.remove(0)
                    } else {
                        values[0].clone()
                    };
                    let reply = json!({
                        "ARN": id, "Name": id, "SecretString": value,
                        "VersionId": "v1", "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.764e9,
                    });
                    (200, reply.to_string(), JSON)
                }
                _ => {
                    let reply = json!({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."});
                    (400, reply.to_string(), JSON)
                }
            }
        }
        "AmazonSSM.GetParameter" => {
            let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let name = request["Name"].as_str().unwrap_or_default();
            match world.parameters.get(name) {
                Some(value) => {
                    let reply = json!({"Parameter": {"Name": name, "Type": "SecureString", "Value": value, "Version": 1}});
                    (200, reply.to_string(), JSON)
                }
                None => (
                    400,
                    json!({"__type": "ParameterNotFound", "message": "not found"}).to_string(),
                    JSON,
                ),
            }
        }
        "rds.DescribeDBLogFiles" => (
            200,
            rds_reply(
                "DescribeDBLogFiles",
                "<DescribeDBLogFiles></DescribeDBLogFiles>",
            ),
            XML,
        ),
        "rds.DescribeDBInstances" => {
            let id = form(body, "DBInstanceIdentifier");
            match world.instances.get(&id) {
                Some((secret, cluster)) => {
                    let mut inner = format!("<DBInstanceIdentifier>{id}</DBInstanceIdentifier><Engine>postgres</Engine>");
                    if let Some(cluster) = cluster {
                        inner.push_str(&format!(
                            "<DBClusterIdentifier>{cluster}</DBClusterIdentifier>"
                        ));
                    }
                    if let Some(secret) = secret {
                        inner.push_str(&master_secret_xml(secret));
                    }
                    (
                        200,
                        rds_reply(
                            "DescribeDBInstances",
                            &format!("<DBInstances><DBInstance>{inner}</DBInstance></DBInstances>"),
                        ),
                        XML,
                    )
                }
                None => (
                    404,
                    rds_error("DBInstanceNotFound", &format!("DBInstance {id} not found.")),
                    XML,
                ),
            }
        }
        "rds.DescribeDBClusters" => {
            let id = form(body, "DBClusterIdentifier");
            match world.clusters.get(&id) {
                Some(secret) => {
                    let inner = format!(
                        "<DBClusterIdentifier>{id}</DBClusterIdentifier><Engine>aurora-postgresql</Engine>{}",
                        master_secret_xml(secret)
                    );
                    (
                        200,
                        rds_reply(
                            "DescribeDBClusters",
                            &format!("<DBClusters><DBCluster>{inner}</DBCluster></DBClusters>"),
                        ),
                        XML,
                    )
                }
                None => (
                    404,
                    rds_error(
                        "DBClusterNotFoundFault",
                        &format!("DBCluster {id} not found."),
                    ),
                    XML,
                ),
            }
        }
        _ => (
            400,
            json!({"__type": "InvalidAction", "message": operation}).to_string(),
            JSON,
        ),
    }
}

fn master_secret_xml(secret: &MasterSecret) -> String {
    format!(
        "<MasterUserSecret><SecretArn>{}</SecretArn><SecretStatus>{}</SecretStatus><KmsKeyId>alias/aws/secretsmanager</KmsKeyId></MasterUserSecret>",
        secret.arn, secret.status
    )
}

fn rds_reply(action: &str, result: &str) -> String {
    format!(
        "<{action}Response xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></{action}Response>"
    )
}

fn rds_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    )
}

/// The fake AWS account a test runs rlsctl in: the double's URL for every
/// service, keys, a region, and config and credentials files of the test's
/// own (the machine's are never read).
pub struct FakeAws {
    /// Holds the config and credentials files.
    _dir: tempfile::TempDir,
    /// The environment to run rlsctl with.
    pub env: Vec<(String, String)>,
}

/// The default keys' id (the environment's).
pub const DEFAULT_KEY: &str = "AKIDDEFAULTEXAMPLE";
/// The `ops` profile's key id (the credentials file's).
pub const PROFILE_KEY: &str = "AKIDPROFILEEXAMPLE";
/// The secret key of both.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

impl FakeAws {
    /// Default credentials in the environment, region us-west-2, and a
    /// profile `ops` (its own key, region eu-central-1) in the files.
    pub fn new(url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let config = write("config", "[profile ops]\nregion = eu-central-1\n");
        let credentials = write(
            "credentials",
            &format!(
                "[ops]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
            ),
        );
        let env = [
            ("AWS_ENDPOINT_URL", url.to_string()),
            ("AWS_REGION", "us-west-2".to_string()),
            ("AWS_ACCESS_KEY_ID", DEFAULT_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_CONFIG_FILE", config),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials),
        ];
        Self {
            _dir: dir,
            env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    /// The environment for `--profile ops`: the profile's keys only (the
    /// default chain would take keys from the environment first).
    pub fn with_profile_only(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("AWS_ACCESS_KEY_ID")
                    && k != "AWS_SECRET_ACCESS_KEY"
                    && k != "AWS_REGION"
            })
            .cloned()
            .chain([("AWS_PROFILE".to_string(), "ops".to_string())])
            .collect()
    }
}
