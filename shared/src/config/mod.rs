//! Configuration: built-in defaults, then an optional TOML file named by `FLICK_CONFIG`, then
//! environment variables (`FLICK_SECTION__KEY`, and the original project's names such as
//! `DATABASE_URL` or `PORT`).
//!
//! Each service declares its own configuration struct out of the sections here plus its own,
//! and loads it with [`load`]. Sections refuse unknown keys, so a typo is an error rather than a
//! silently ignored setting; every error is one line naming the setting and where it came from.

mod error;
mod sections;

pub use error::ConfigError;
pub use sections::{
    DatabaseSettings, EncryptionSettings, LogFormat, LogSettings, NatsSettings, OpsSettings,
    StreamSettings,
};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// Names of the original project's settings, and the key each one sets.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("NATS_URL", "nats.url"),
    ("RUST_LOG", "log.filter"),
    ("HOST", "gateway.host"),
    ("PORT", "gateway.port"),
    ("JWT_SECRET", "gateway.jwt_secret"),
    ("ENCRYPTION_KEY", "encryption.key"),
    ("FLICK_SERVER_ID", "collector.server_id"),
];

/// The variable naming the optional TOML file.
pub const CONFIG_FILE_ENV: &str = "FLICK_CONFIG";
/// Prefix of the structured variables: `FLICK_NATS__URL` sets `nats.url`.
pub const ENV_PREFIX: &str = "FLICK_";
/// Separator between a section and its key in a `FLICK_` variable.
pub const ENV_SPLIT: &str = "__";

/// A configuration that can check what types alone cannot (ranges, formats, combinations).
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Loads `T` from defaults, the file named by `FLICK_CONFIG` (if set) and the environment.
pub fn load<T: DeserializeOwned + Validate>() -> Result<T, ConfigError> {
    load_over(Figment::new())
}

/// Like [`load`], over `base`: values the file and the environment leave unset come from it
/// (the all-in-one runner's generated development secrets).
pub fn load_over<T: DeserializeOwned + Validate>(base: Figment) -> Result<T, ConfigError> {
    let mut figment = base;
    if let Ok(path) = std::env::var(CONFIG_FILE_ENV) {
        if !std::path::Path::new(&path).is_file() {
            return Err(ConfigError::new(
                CONFIG_FILE_ENV,
                format!("configuration file {path:?} does not exist"),
            ));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let aliases = Env::raw().filter_map(|key| {
        ENV_ALIASES
            .iter()
            .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
            .map(|(_, target)| (*target).into())
    });
    let structured = Env::prefixed(ENV_PREFIX)
        .split(ENV_SPLIT)
        .filter(|key| key.as_str().contains('.'));
    extract(figment.merge(aliases).merge(structured))
}

/// Extracts and validates `T` from an assembled figment (tests build their own).
pub fn extract<T: DeserializeOwned + Validate>(figment: Figment) -> Result<T, ConfigError> {
    let config: T = figment.extract().map_err(ConfigError::from_figment)?;
    config.validate()?;
    Ok(config)
}

/// Runs `check` for the setting named `setting`, turning a refusal into a [`ConfigError`].
pub fn check(setting: &str, ok: bool, message: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(setting, message()))
    }
}
