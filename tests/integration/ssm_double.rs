//! A local SSM endpoint double: speaks the SSM JSON protocol
//! (`X-Amz-Target: AmazonSSM.<Operation>`) for the real AWS SDK, and records
//! every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// How the double answers.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// `PingStatus` of the instance; None: not managed by SSM.
    pub ping_status: Option<&'static str>,
    /// How many StartSession calls answer TargetNotConnected first.
    pub target_not_connected: u32,
    /// Parameter Store values.
    pub parameters: HashMap<String, String>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            ping_status: Some("Online"),
            target_not_connected: 0,
            parameters: HashMap::new(),
        }
    }
}

/// The running double.
pub struct SsmDouble {
    pub url: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    /// The SigV4 credential scope of every request (`KEY/DATE/REGION/ssm/aws4_request`).
    pub credentials: Arc<Mutex<Vec<String>>>,
    pub behavior: Arc<Mutex<Behavior>>,
    server: Arc<tiny_http::Server>,
}

impl SsmDouble {
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let credentials = Arc::new(Mutex::new(Vec::new()));
        let behavior = Arc::new(Mutex::new(Behavior::default()));
        let (s, c, b, k) = (
            server.clone(),
            calls.clone(),
            behavior.clone(),
            credentials.clone(),
        );
        std::thread::spawn(move || {
            let mut sessions = 0;
            for mut request in s.incoming_requests() {
                let target = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("X-Amz-Target"))
                    .map(|h| {
                        h.value
                            .as_str()
                            .trim_start_matches("AmazonSSM.")
                            .to_string()
                    })
                    .unwrap_or_default();
                let scope = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .and_then(|h| {
                        h.value
                            .as_str()
                            .split("Credential=")
                            .nth(1)
                            .map(String::from)
                    })
                    .and_then(|c| c.split(',').next().map(String::from))
                    .unwrap_or_default();
                k.lock().unwrap().push(scope);
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                c.lock().unwrap().push((target.clone(), body.clone()));
                let mut behavior = b.lock().unwrap();
                let (status, answer) = match target.as_str() {
                    "DescribeInstanceInformation" => {
                        let id = body["Filters"][0]["Values"][0].as_str().unwrap_or_default();
                        let list = match behavior.ping_status {
                            Some(status) => {
                                json!([{"InstanceId": id, "PingStatus": status, "PlatformType": "Linux"}])
                            }
                            None => json!([]),
                        };
                        (200, json!({"InstanceInformationList": list}))
                    }
                    "StartSession" if behavior.target_not_connected > 0 => {
                        behavior.target_not_connected -= 1;
                        (
                            400,
                            json!({"__type": "TargetNotConnected", "message": "i-0123456789abcdef0 is not connected."}),
                        )
                    }
                    "StartSession" => {
                        sessions += 1;
                        (
                            200,
                            json!({
                                "SessionId": format!("rlsctl-test-{sessions:04}"),
                                "TokenValue": format!("TOKEN-SECRET-{sessions}"),
                                "StreamUrl": format!("wss://ssmmessages.us-west-2.amazonaws.com/v1/data-channel/rlsctl-test-{sessions:04}"),
                            }),
                        )
                    }
                    "TerminateSession" => (200, json!({"SessionId": body["SessionId"]})),
                    "GetParameter" => match behavior
                        .parameters
                        .get(body["Name"].as_str().unwrap_or_default())
                    {
                        Some(value) => (
                            200,
                            json!({"Parameter": {"Name": body["Name"], "Type": "SecureString", "Value": value, "Version": 1}}),
                        ),
                        None => (
                            400,
                            json!({"__type": "ParameterNotFound", "message": "not found"}),
                        ),
                    },
                    _ => (400, json!({"__type": "InvalidAction", "message": target})),
                };
                let response = tiny_http::Response::from_string(answer.to_string())
                    .with_status_code(status)
                    .with_header(
                        tiny_http::Header::from_bytes("Content-Type", "application/x-amz-json-1.1")
                            .unwrap(),
                    );
                let _ = request.respond(response);
            }
        });
        Self {
            url,
            calls,
            credentials,
            behavior,
            server,
        }
    }

    /// Operation names, in order.
    pub fn operations(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(op, _)| op.clone())
            .collect()
    }

    /// Request bodies of one operation.
    pub fn bodies(&self, op: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

impl Drop for SsmDouble {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
