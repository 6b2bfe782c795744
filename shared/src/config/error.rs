//! A configuration error that fits on one line and names the setting at fault.

use std::fmt;

use figment::Source;

use super::{ENV_ALIASES, ENV_PREFIX, ENV_SPLIT};

/// What is wrong with which setting, and where the bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting's key, `section.key`.
    pub setting: String,
    pub message: String,
    /// "environment variable FLICK_NATS__URL", "file /etc/flick.toml", …
    pub origin: Option<String>,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
            origin: None,
        }
    }

    pub(super) fn from_figment(err: figment::Error) -> Self {
        let setting = err.path.join(".");
        let origin = err.metadata.as_ref().map(|md| origin_of(md, &setting));
        // Only the first error is reported: one line, the first thing to fix.
        let message = err.kind.to_string().replace('\n', " ");
        Self {
            setting: if setting.is_empty() {
                "(top level)".to_owned()
            } else {
                setting
            },
            message,
            origin,
        }
    }

    /// Names where the setting's value came from, when validation (which sees only values)
    /// found it wrong.
    pub(super) fn with_origin_from(mut self, figment: &figment::Figment) -> Self {
        if self.origin.is_none() {
            self.origin = figment
                .find_metadata(&self.setting)
                .map(|md| origin_of(md, &self.setting));
        }
        self
    }
}

/// "environment variable FLICK_NATS__URL", "file /etc/flick.toml", …
fn origin_of(md: &figment::Metadata, setting: &str) -> String {
    match &md.source {
        Some(Source::File(path)) => format!("file {}", path.display()),
        _ if md.name.contains(ENV_PREFIX) => format!(
            "environment variable {ENV_PREFIX}{}",
            setting.replace('.', ENV_SPLIT).to_ascii_uppercase()
        ),
        _ if md.name.contains("environment") => ENV_ALIASES
            .iter()
            .find(|(_, target)| *target == setting)
            .map(|(name, _)| format!("environment variable {name}"))
            .unwrap_or_else(|| "the environment".to_owned()),
        _ => md.name.to_string(),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {}: {}",
            self.setting, self.message
        )?;
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
