//! A local RDS endpoint double for the log-file API: speaks the AWS Query
//! protocol (form-encoded `Action=...`, XML answers) for the real AWS SDK,
//! serves one log file in two portions, and records every request.

use std::sync::{Arc, Mutex};

/// The running double.
pub struct RdsDouble {
    pub url: String,
    calls: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
}

/// The log file's name as RDS lists it.
pub const LOG_FILE: &str = "error/postgresql.log.2026-11-27-05";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl RdsDouble {
    /// Serves `log` as the one log file of instance `instance`.
    pub fn start(instance: &str, log: String) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (s, c, instance) = (server.clone(), calls.clone(), instance.to_string());
        let lines: Vec<&str> = log.split_inclusive('\n').collect();
        let half = lines.len() / 2;
        let portions = [lines[..half].concat(), lines[half..].concat()];
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let form: Vec<(String, String)> = body
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.replace('+', " ")))
                    .collect();
                let get = |key: &str| {
                    form.iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let action = get("Action");
                c.lock().unwrap().push(body.clone());
                let answer = if get("DBInstanceIdentifier") != instance {
                    (404, "<ErrorResponse><Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>no such instance</Message></Error><RequestId>1</RequestId></ErrorResponse>".to_string())
                } else {
                    match action.as_str() {
                        "DescribeDBLogFiles" => (200, format!(
                            "<DescribeDBLogFilesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeDBLogFilesResult>\
                             <DescribeDBLogFiles><DescribeDBLogFilesDetails><LogFileName>{LOG_FILE}</LogFileName>\
                             <LastWritten>1764219600000</LastWritten><Size>{}</Size></DescribeDBLogFilesDetails></DescribeDBLogFiles>\
                             </DescribeDBLogFilesResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeDBLogFilesResponse>",
                            portions[0].len() + portions[1].len()
                        )),
                        "DownloadDBLogFilePortion" => {
                            let (data, pending, next) = match get("Marker").as_str() {
                                "0" => (&portions[0], true, "1"),
                                _ => (&portions[1], false, "2"),
                            };
                            (200, format!(
                                "<DownloadDBLogFilePortionResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
                                 <DownloadDBLogFilePortionResult><LogFileData>{}</LogFileData>\
                                 <AdditionalDataPending>{pending}</AdditionalDataPending><Marker>{next}</Marker>\
                                 </DownloadDBLogFilePortionResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>\
                                 </DownloadDBLogFilePortionResponse>",
                                escape(data)
                            ))
                        }
                        _ => (400, "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unknown</Message></Error><RequestId>1</RequestId></ErrorResponse>".to_string()),
                    }
                };
                let response = tiny_http::Response::from_string(answer.1)
                    .with_status_code(answer.0)
                    .with_header(
                        tiny_http::Header::from_bytes("Content-Type", "text/xml").unwrap(),
                    );
                let _ = request.respond(response);
            }
        });
        Self { url, calls, server }
    }

    /// The `Action` of every request, in order.
    pub fn actions(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| {
                b.split('&')
                    .find_map(|p| p.strip_prefix("Action="))
                    .map(String::from)
            })
            .collect()
    }
}

impl Drop for RdsDouble {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
