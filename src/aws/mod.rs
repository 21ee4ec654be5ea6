//! AWS: configuration from the standard chain, the SSM calls rlsctl makes,
//! Parameter Store, Secrets Manager (`secrets`) and RDS itself (`rds`: the
//! managed master secret, IAM auth tokens). Its log files are read in
//! `logs::rds`.

pub(crate) mod rds;
pub(crate) mod secrets;

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use aws_sdk_ssm::types::{InstanceInformationStringFilter, PingStatus};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// The document that forwards a local port to a remote host through the instance.
pub(crate) const PORT_FORWARD_DOCUMENT: &str = "AWS-StartPortForwardingSessionToRemoteHost";

/// Which AWS credentials and region to use (`--profile`, `--region`; else the
/// standard chain: env, SSO, instance role), and the RDS instance a run works
/// on. One value for every AWS call rlsctl makes: SSM sessions, Parameter
/// Store, Secrets Manager, RDS and its auth tokens alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AwsSettings {
    /// Profile name.
    pub(crate) profile: Option<String>,
    /// Region.
    pub(crate) region: Option<String>,
    /// The RDS instance (or Aurora cluster) identifier, when known.
    pub(crate) rds_instance: Option<String>,
}

/// The SDK configuration from the standard chain (profile, SSO, env, the
/// `AWS_ENDPOINT_URL_<SERVICE>` variables), over the same rustls + ring stack
/// as the rest of rlsctl. The region it settles on is logged at `-v`.
pub(crate) async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    // Loaded once per profile and region: its credentials cache then serves
    // every call, an IAM token per connection included.
    static LOADED: std::sync::Mutex<Vec<(AwsSettings, aws_config::SdkConfig)>> =
        std::sync::Mutex::new(Vec::new());
    let key = AwsSettings {
        rds_instance: None,
        ..settings.clone()
    };
    if let Some((_, config)) = LOADED
        .lock()
        .ok()
        .and_then(|loaded| loaded.iter().find(|(k, _)| *k == key).cloned())
    {
        return config;
    }
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let config = loader.load().await;
    tracing::info!(
        region = config.region().map(|r| r.as_ref()).unwrap_or("(none)"),
        profile = settings.profile.as_deref().unwrap_or("(default chain)"),
        "AWS configuration"
    );
    if let Ok(mut loaded) = LOADED.lock() {
        loaded.push((key, config.clone()));
    }
    config
}

/// The configured region; a missing one is an error, never a silent default.
pub(crate) fn region_of(config: &aws_config::SdkConfig) -> Result<String> {
    config.region().map(|r| r.to_string()).ok_or_else(|| {
        anyhow!("no AWS region: set AWS_REGION, pass --region, or set one in the profile")
    })
}

/// An SDK error for a message: the service's code and message when the
/// service answered, else the whole chain (no credentials, connection refused).
pub(crate) fn error_text<E, R>(err: &aws_sdk_ssm::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_ssm::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        ),
        None => crate::logging::error_chain(err),
    }
}

/// An SSM client and what the plugin needs to know about it.
pub(crate) struct Ssm {
    /// The client.
    pub(crate) client: aws_sdk_ssm::Client,
    /// The region.
    pub(crate) region: String,
    /// The endpoint URL the client talks to (the plugin gets the same).
    pub(crate) endpoint: String,
    /// The profile name ("" when none).
    pub(crate) profile: String,
}

impl Ssm {
    /// Builds the client; fails when no region is configured.
    pub(crate) async fn new(settings: &AwsSettings) -> Result<Self> {
        let config = sdk_config(settings).await;
        let region = region_of(&config)?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_SSM")
            .ok()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| config.endpoint_url().map(String::from))
            .unwrap_or_else(|| format!("https://ssm.{region}.amazonaws.com"));
        Ok(Self {
            client: aws_sdk_ssm::Client::new(&config),
            region,
            endpoint,
            profile: settings.profile.clone().unwrap_or_default(),
        })
    }

    /// The instance must be SSM-managed and Online.
    pub(crate) async fn check_instance(&self, instance_id: &str) -> Result<()> {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(instance_id)
            .build()?;
        let output = self
            .client
            .describe_instance_information()
            .filters(filter)
            .send()
            .await
            .map_err(|e| anyhow!("DescribeInstanceInformation: {}", error_text(&e)))?;
        let info = output
            .instance_information_list()
            .iter()
            .find(|i| i.instance_id() == Some(instance_id));
        match info.and_then(|i| i.ping_status()) {
            None => bail!(
                "instance {instance_id} is not managed by SSM in {} (no agent registered; check the region, the account and the instance's IAM role)",
                self.region
            ),
            Some(PingStatus::Online) => Ok(()),
            Some(status) => bail!("instance {instance_id} is {} to SSM, not Online: check that it runs and its SSM agent is up", status.as_str()),
        }
    }

    /// StartSession for port forwarding; `TargetNotConnected` is retried briefly.
    /// Returns the response JSON the plugin expects and the session id.
    pub(crate) async fn start_session(
        &self,
        instance_id: &str,
        host: &str,
        remote_port: u16,
        local_port: u16,
    ) -> Result<(String, String)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .start_session()
                .target(instance_id)
                .document_name(PORT_FORWARD_DOCUMENT)
                .parameters("host", vec![host.to_string()])
                .parameters("portNumber", vec![remote_port.to_string()])
                .parameters("localPortNumber", vec![local_port.to_string()])
                .send()
                .await;
            match result {
                Ok(output) => {
                    let session_id = output.session_id().unwrap_or_default().to_string();
                    let response = serde_json::json!({
                        "SessionId": session_id,
                        "TokenValue": output.token_value().unwrap_or_default(),
                        "StreamUrl": output.stream_url().unwrap_or_default(),
                    });
                    return Ok((response.to_string(), session_id));
                }
                Err(e)
                    if attempt < 4
                        && e.as_service_error()
                            .is_some_and(|s| s.is_target_not_connected()) =>
                {
                    let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                    tracing::warn!(attempt, ?wait, "StartSession: TargetNotConnected; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => bail!("StartSession: {}", error_text(&e)),
            }
        }
    }

    /// TerminateSession; errors are logged, not returned (this runs on every way out).
    pub(crate) async fn terminate_session(&self, session_id: &str) {
        match self
            .client
            .terminate_session()
            .session_id(session_id)
            .send()
            .await
        {
            Ok(_) => tracing::info!(session_id, "session terminated"),
            Err(e) => tracing::warn!(session_id, "TerminateSession failed: {}", error_text(&e)),
        }
    }
}

/// Reads a SecureString (or String) parameter, decrypted.
pub(crate) async fn secure_parameter(name: &str, settings: &AwsSettings) -> Result<String> {
    let config = sdk_config(settings).await;
    let client = aws_sdk_ssm::Client::new(&config);
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| anyhow!("GetParameter: {}", error_text(&e)))?;
    output
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| anyhow!("the parameter has no value"))
}
