//! Password sources (`--password-from` and friends): a prompt, the
//! environment, a file, Parameter Store, Secrets Manager (the RDS-managed
//! master secret too), read when the server asks; and IAM auth tokens
//! (`--iam-auth`), made for every connection.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};

use crate::aws::AwsSettings;
use crate::model::secret::Secret;
use crate::pg::{prompt, Credential, CredentialFuture, PasswordSupplier, Renewal};

/// Where a password comes from (`--password-from` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PasswordSource {
    /// Ask on the terminal (only on a TTY).
    Prompt,
    /// An environment variable.
    Env(String),
    /// The first line of a file.
    File(PathBuf),
    /// An SSM Parameter Store SecureString, decrypted.
    Ssm(String),
    /// A Secrets Manager secret (name or ARN): JSON with `password` (and
    /// `username`), or the password as a plain string.
    SecretsManager(String),
    /// The secret RDS keeps for the master user (`ManageMasterUserPassword`)
    /// of the instance or cluster this run works on.
    RdsMaster,
}

/// What a password source looks like. Errors never repeat the value given:
/// a password typed where its source was expected must not reach a terminal,
/// cron mail or the journal.
const SOURCE_FORMS: &str =
    "use prompt, env:VAR, file:PATH, ssm:/name, secretsmanager:SECRET or rds-master";

impl FromStr for PasswordSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "prompt" => return Ok(Self::Prompt),
            "rds-master" => return Ok(Self::RdsMaster),
            _ => {}
        }
        let unknown = || {
            format!("not a password source (the value is not repeated: it may be a password); {SOURCE_FORMS}")
        };
        let (kind, rest) = s.split_once(':').ok_or_else(unknown)?;
        let source = match kind {
            "env" => Self::Env(rest.to_string()),
            "file" => Self::File(PathBuf::from(rest)),
            "ssm" => Self::Ssm(rest.to_string()),
            "secretsmanager" => Self::SecretsManager(rest.to_string()),
            _ => return Err(unknown()),
        };
        if rest.is_empty() {
            return Err(format!(
                "the password source {kind}: needs a value after the colon"
            ));
        }
        Ok(source)
    }
}

/// clap's parser for password sources: clap's own error would print the value
/// ("invalid value '...'"), so this one says only which option was wrong.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceParser;

impl clap::builder::TypedValueParser for SourceParser {
    type Value = PasswordSource;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let option = arg
            .map(|a| a.to_string())
            .unwrap_or_else(|| "a password source".into());
        let parsed = value
            .to_str()
            .ok_or_else(|| format!("not a password source (not UTF-8); {SOURCE_FORMS}"))
            .and_then(str::parse);
        parsed.map_err(|why| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{option}: {why}\n"),
            )
        })
    }
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Prompt => f.write_str("prompt"),
            Self::Env(var) => write!(f, "env:{var}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Ssm(name) => write!(f, "ssm:{name}"),
            Self::SecretsManager(id) => write!(f, "secretsmanager:{id}"),
            Self::RdsMaster => f.write_str("rds-master"),
        }
    }
}

impl PasswordSource {
    /// Reads the password. `what` names it in prompts and errors ("password for
    /// app_user"); `aws` says how to reach AWS for the AWS sources.
    pub(crate) async fn read(&self, what: &str, aws: &AwsSettings) -> Result<Secret> {
        Ok(self.credential(what, aws).await?.password)
    }

    /// Reads the password, and the user name where the source names one.
    async fn credential(&self, what: &str, aws: &AwsSettings) -> Result<Credential> {
        let plain = |value: String| Credential {
            user: None,
            password: Secret::new(value),
        };
        let credential = match self {
            Self::Prompt => plain(prompt(what)?),
            Self::Env(var) => plain(
                std::env::var(var)
                    .with_context(|| format!("{what}: environment variable {var} is not set"))?,
            ),
            Self::File(path) => {
                let text = crate::input_file::read(path, what, false)?;
                plain(text.lines().next().unwrap_or_default().to_string())
            }
            Self::Ssm(name) => plain(
                crate::aws::secure_parameter(name, aws)
                    .await
                    .with_context(|| format!("{what}: SSM parameter {name}"))?,
            ),
            Self::SecretsManager(id) => {
                let value = crate::aws::secrets::secret_string(aws, id)
                    .await
                    .with_context(|| format!("{what}: Secrets Manager secret {id}"))?;
                from_secret(value, false)
                    .with_context(|| format!("{what}: Secrets Manager secret {id}"))?
            }
            Self::RdsMaster => {
                let instance = aws.rds_instance.as_deref().ok_or_else(|| {
                    anyhow!("{what}: rds-master needs the instance: --db-instance ID, or RDS_ENDPOINT (its first label)")
                })?;
                let arn = crate::aws::rds::master_secret_arn(aws, instance)
                    .await
                    .with_context(|| {
                        format!("{what}: the RDS-managed master secret of {instance}")
                    })?;
                let value = crate::aws::secrets::secret_string(aws, &arn)
                    .await
                    .with_context(|| format!("{what}: the RDS-managed master secret {arn}"))?;
                from_secret(value, true)
                    .with_context(|| format!("{what}: the RDS-managed master secret {arn}"))?
            }
        };
        if credential.password.expose().is_empty() {
            bail!("{what}: the source {self} gave an empty password");
        }
        Ok(credential)
    }
}

/// A Secrets Manager value as a credential: a JSON object gives `password`
/// (and `username`); anything else is the password itself, unless `json` (the
/// RDS-managed secret is always JSON). Errors never quote the value.
fn from_secret(value: Secret, json: bool) -> Result<Credential> {
    let field = |object: &serde_json::Map<String, serde_json::Value>, name: &str| {
        object.get(name).and_then(|v| v.as_str()).map(String::from)
    };
    match serde_json::from_str::<serde_json::Value>(value.expose()) {
        Ok(serde_json::Value::Object(object)) => Ok(Credential {
            user: field(&object, "username"),
            password: Secret::new(field(&object, "password").ok_or_else(|| {
                anyhow!("the secret is a JSON object without a \"password\" string")
            })?),
        }),
        _ if json => bail!("the secret is not the JSON object RDS writes (username, password)"),
        _ => Ok(Credential {
            user: None,
            password: value,
        }),
    }
}

/// A password source with the AWS settings its AWS forms need: what a
/// connection asks when the server wants a password.
#[derive(Debug, Clone)]
pub(crate) struct Supplier {
    /// Where the password comes from.
    pub(crate) source: PasswordSource,
    /// How to reach AWS.
    pub(crate) aws: AwsSettings,
}

impl PasswordSupplier for Supplier {
    fn credential<'a>(&'a self, _user: &'a str, what: &'a str) -> CredentialFuture<'a> {
        Box::pin(self.source.credential(what, &self.aws))
    }

    fn renewal(&self) -> Renewal {
        match self.source {
            PasswordSource::SecretsManager(_) | PasswordSource::RdsMaster => Renewal::OnRejection,
            _ => Renewal::Once,
        }
    }
}

/// IAM database authentication (`--iam-auth`): a token for the user being
/// connected as, signed for the RDS endpoint and port, made anew for every
/// connection.
#[derive(Debug, Clone)]
pub(crate) struct IamToken {
    /// The credentials and region that sign it.
    pub(crate) aws: AwsSettings,
    /// The RDS endpoint name it is signed for (never the tunnel's 127.0.0.1).
    pub(crate) host: String,
    /// The port RDS serves on (never the tunnel's local port).
    pub(crate) port: u16,
}

impl PasswordSupplier for IamToken {
    fn credential<'a>(&'a self, user: &'a str, _what: &'a str) -> CredentialFuture<'a> {
        Box::pin(async move {
            let password =
                crate::aws::rds::auth_token(&self.aws, &self.host, self.port, user).await?;
            tracing::debug!(user, host = %self.host, port = self.port, "made an IAM auth token");
            Ok(Credential {
                user: None,
                password,
            })
        })
    }

    fn renewal(&self) -> Renewal {
        Renewal::PerConnection
    }

    fn cleartext_under_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            "prompt".parse::<PasswordSource>().unwrap(),
            PasswordSource::Prompt
        );
        assert_eq!(
            "env:X".parse::<PasswordSource>().unwrap(),
            PasswordSource::Env("X".into())
        );
        assert_eq!(
            "ssm:/a/b".parse::<PasswordSource>().unwrap(),
            PasswordSource::Ssm("/a/b".into())
        );
        assert_eq!(
            "secretsmanager:arn:aws:secretsmanager:us-west-2:1:secret:rds!db-1"
                .parse::<PasswordSource>()
                .unwrap(),
            PasswordSource::SecretsManager(
                "arn:aws:secretsmanager:us-west-2:1:secret:rds!db-1".into()
            )
        );
        assert_eq!(
            "rds-master".parse::<PasswordSource>().unwrap(),
            PasswordSource::RdsMaster
        );
        assert!("env:".parse::<PasswordSource>().is_err());
        assert!("secretsmanager:".parse::<PasswordSource>().is_err());
        assert!("hunter2".parse::<PasswordSource>().is_err());
        // A mistaken password is never repeated in the error.
        for secret in ["S3cretPassw0rd!", "Hunter2:withcolon", "hunter3"] {
            let err = secret.parse::<PasswordSource>().unwrap_err();
            assert!(!err.contains(secret), "{err}");
        }
    }

    #[test]
    fn secrets_give_the_password_and_user_and_never_quote_the_value() {
        let json = from_secret(
            Secret::new(r#"{"username":"master","password":"p\"w"}"#),
            true,
        )
        .unwrap();
        assert_eq!(json.user.as_deref(), Some("master"));
        assert_eq!(json.password.expose(), "p\"w");
        let plain = from_secret(Secret::new("just-a-password"), false).unwrap();
        assert_eq!(
            (plain.user, plain.password.expose()),
            (None, "just-a-password")
        );
        for (value, json) in [
            (r#"{"pass":"hunter2-leak"}"#, false),
            ("hunter2-leak", true),
        ] {
            let err = from_secret(Secret::new(value), json).unwrap_err();
            assert!(!format!("{err:#}").contains("hunter2-leak"), "{err:#}");
        }
    }
}
