//! RDS itself: which instance or cluster a run works on, the secret RDS keeps
//! for its master user, and IAM database authentication tokens.

use anyhow::{anyhow, bail, Result};
use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config as TokenConfig};
use aws_sdk_rds::types::MasterUserSecret;

use super::{error_text, region_of, sdk_config, AwsSettings};
use crate::model::secret::Secret;

/// The DB instance identifier from an RDS endpoint: its first label
/// (`mydb.abc123.us-west-2.rds.amazonaws.com` is `mydb`; for an Aurora
/// cluster endpoint, `mycluster.cluster-abc.…`, the cluster's).
pub(crate) fn instance_from_endpoint(endpoint: &str) -> Option<String> {
    endpoint
        .split('.')
        .next()
        .filter(|label| !label.is_empty())
        .map(String::from)
}

/// The ARN of the secret RDS keeps for the master user of `identifier`
/// (`ManageMasterUserPassword`): the instance's, or, for an Aurora instance or
/// a cluster identifier, the cluster's. A secret that is not `active` is an
/// error naming it.
pub(crate) async fn master_secret_arn(settings: &AwsSettings, identifier: &str) -> Result<String> {
    let config = sdk_config(settings).await;
    region_of(&config)?;
    let client = aws_sdk_rds::Client::new(&config);
    let cluster = match client
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
    {
        Ok(output) => {
            let instance = output
                .db_instances()
                .first()
                .ok_or_else(|| anyhow!("DescribeDBInstances for {identifier}: no such instance"))?;
            if let Some(secret) = instance.master_user_secret() {
                return active_arn(secret, &format!("instance {identifier}"));
            }
            match instance.db_cluster_identifier() {
                Some(cluster) => cluster.to_string(),
                None => bail!(
                    "instance {identifier} has no RDS-managed master secret (ManageMasterUserPassword is off): \
                     use --password-from secretsmanager:<id>, ssm:<name> or --iam-auth"
                ),
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            identifier.to_string()
        }
        Err(e) => bail!("DescribeDBInstances for {identifier}: {}", error_text(&e)),
    };
    let output = client
        .describe_db_clusters()
        .db_cluster_identifier(&cluster)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "no RDS instance {identifier}, and DescribeDBClusters for {cluster}: {}",
                error_text(&e)
            )
        })?;
    let secret = output
        .db_clusters()
        .first()
        .and_then(|c| c.master_user_secret())
        .ok_or_else(|| {
            anyhow!("cluster {cluster} has no RDS-managed master secret (ManageMasterUserPassword is off)")
        })?;
    active_arn(secret, &format!("cluster {cluster}"))
}

/// The secret's ARN when it is active (else rotation or KMS trouble: a clear
/// error rather than a password that will not work).
fn active_arn(secret: &MasterUserSecret, of: &str) -> Result<String> {
    let arn = secret
        .secret_arn()
        .ok_or_else(|| anyhow!("the master secret of {of} has no ARN"))?;
    match secret.secret_status() {
        Some("active") => Ok(arn.to_string()),
        status => bail!(
            "the master secret of {of} ({arn}) is {}, not active: wait for RDS to finish with it, \
             or see the instance's events",
            status.unwrap_or("of unknown status")
        ),
    }
}

/// An IAM database authentication token for `user` at `host:port`: RDS checks
/// the signature against the endpoint name and port it serves, so through a
/// tunnel these are RDS's, never the local ones. Valid 15 minutes.
pub(crate) async fn auth_token(
    settings: &AwsSettings,
    host: &str,
    port: u16,
    user: &str,
) -> Result<Secret> {
    let config = sdk_config(settings).await;
    // The generator falls back to us-east-1 silently; rlsctl never does.
    let region = region_of(&config)?;
    let generator = AuthTokenGenerator::new(
        TokenConfig::builder()
            .hostname(host)
            .port(u64::from(port))
            .username(user)
            .region(aws_sdk_rds::config::Region::new(region))
            .build()
            .map_err(|e| anyhow!("IAM auth token settings: {e}"))?,
    );
    let token = generator
        .auth_token(&config)
        .await
        .map_err(|e| anyhow!("making the IAM auth token for {user} at {host}:{port}: {e}"))?;
    Ok(Secret::new(token.as_str().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_is_the_endpoints_first_label() {
        assert_eq!(
            instance_from_endpoint("mydb.abc123.us-west-2.rds.amazonaws.com").as_deref(),
            Some("mydb")
        );
        assert_eq!(instance_from_endpoint(""), None);
    }
}
