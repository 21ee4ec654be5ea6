//! Secrets Manager: a secret's current value (`AWSCURRENT`).

use anyhow::{anyhow, Result};

use super::{error_text, region_of, sdk_config, AwsSettings};
use crate::model::secret::Secret;

/// The current string value of secret `id` (a name or an ARN).
pub(crate) async fn secret_string(settings: &AwsSettings, id: &str) -> Result<Secret> {
    let config = sdk_config(settings).await;
    region_of(&config)?;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let output = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| anyhow!("GetSecretValue: {}", error_text(&e)))?;
    output.secret_string.map(Secret::new).ok_or_else(|| {
        anyhow!("the secret has no string value (a binary secret is not a password)")
    })
}
