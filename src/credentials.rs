//! Password sources (`--password-from` and friends): a prompt, the
//! environment, a file or Parameter Store, read when the server asks.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

use crate::aws::AwsSettings;
use crate::model::secret::Secret;
use crate::pg::{prompt, PasswordSupplier};

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
}

/// What a password source looks like. Errors never repeat the value given:
/// a password typed where its source was expected must not reach a terminal,
/// cron mail or the journal.
const SOURCE_FORMS: &str = "use prompt, env:VAR, file:PATH or ssm:/name";

impl FromStr for PasswordSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "prompt" {
            return Ok(Self::Prompt);
        }
        let unknown = || {
            format!("not a password source (the value is not repeated: it may be a password); {SOURCE_FORMS}")
        };
        let (kind, rest) = s.split_once(':').ok_or_else(unknown)?;
        let source = match kind {
            "env" => Self::Env(rest.to_string()),
            "file" => Self::File(PathBuf::from(rest)),
            "ssm" => Self::Ssm(rest.to_string()),
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
        }
    }
}

impl PasswordSource {
    /// Reads the password. `what` names it in prompts and errors ("password for
    /// app_user"); `aws` says how to reach Parameter Store for `ssm:`.
    pub(crate) async fn read(&self, what: &str, aws: &AwsSettings) -> Result<Secret> {
        let value = match self {
            Self::Prompt => prompt(what)?,
            Self::Env(var) => std::env::var(var)
                .with_context(|| format!("{what}: environment variable {var} is not set"))?,
            Self::File(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("{what}: cannot read {}", path.display()))?;
                text.lines().next().unwrap_or_default().to_string()
            }
            Self::Ssm(name) => crate::aws::secure_parameter(name, aws)
                .await
                .with_context(|| format!("{what}: SSM parameter {name}"))?,
        };
        if value.is_empty() {
            bail!("{what}: the source {self} gave an empty password");
        }
        Ok(Secret::new(value))
    }
}

/// A password source with the AWS settings its `ssm:` form needs: what a
/// connection asks when the server wants a password.
#[derive(Debug, Clone)]
pub(crate) struct Supplier {
    /// Where the password comes from.
    pub(crate) source: PasswordSource,
    /// How to reach Parameter Store.
    pub(crate) aws: AwsSettings,
}

impl PasswordSupplier for Supplier {
    fn password<'a>(
        &'a self,
        what: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret>> + Send + 'a>> {
        Box::pin(self.source.read(what, &self.aws))
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
        assert!("env:".parse::<PasswordSource>().is_err());
        assert!("hunter2".parse::<PasswordSource>().is_err());
        // A mistaken password is never repeated in the error.
        for secret in ["S3cretPassw0rd!", "Hunter2:withcolon", "hunter3"] {
            let err = secret.parse::<PasswordSource>().unwrap_err();
            assert!(!err.contains(secret), "{err}");
        }
    }
}
