//! AWS: configuration from the standard chain, the SSM client, Parameter Store.

use anyhow::{anyhow, Context, Result};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// The SDK configuration from the standard chain (profile, SSO, env,
/// `AWS_ENDPOINT_URL_SSM`), over the same rustls + ring stack as the rest of rlsctl.
pub async fn sdk_config(profile: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}

/// An SSM client from the standard chain.
pub async fn ssm_client() -> aws_sdk_ssm::Client {
    let profile = std::env::var("AWS_PROFILE").ok();
    let config = sdk_config(profile.as_deref(), None).await;
    aws_sdk_ssm::Client::new(&config)
}

/// Reads a SecureString (or String) parameter, decrypted.
pub async fn secure_parameter(name: &str) -> Result<String> {
    let client = ssm_client().await;
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| anyhow!("{}", aws_sdk_ssm::error::DisplayErrorContext(e)))
        .context("GetParameter")?;
    output
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| anyhow!("the parameter has no value"))
}
