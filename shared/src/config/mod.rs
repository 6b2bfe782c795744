//! Configuration: built-in defaults, then an optional TOML file named by `FLICK_CONFIG`, then
//! environment variables (`FLICK_SECTION__KEY`, and the original project's names such as
//! `DATABASE_URL` or `PORT`).
//!
//! Each service declares its own configuration struct out of the sections here plus its own,
//! and loads it with [`load`]. Sections refuse unknown keys, so a typo is an error rather than a
//! silently ignored setting; every error is one line naming the setting and where it came from.

mod error;
mod secrets;
mod sections;

pub use error::ConfigError;
pub use secrets::{SecretKind, is_published, low_entropy, refusal};
pub use sections::{
    DatabaseSettings, EncryptionSettings, LogFormat, LogSettings, NatsSettings, OpsSettings,
    StreamSettings,
};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize as _;
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
    let from_files = secret_files()?;
    let aliases = Env::raw().filter_map(|key| {
        ENV_ALIASES
            .iter()
            .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
            .map(|(_, target)| (*target).into())
    });
    let structured = Env::prefixed(ENV_PREFIX)
        .split(ENV_SPLIT)
        .filter(|key| key.as_str().contains('.'));
    extract(figment.merge(from_files).merge(aliases).merge(structured))
}

/// Suffix of a variable naming a file that holds the value (`JWT_SECRET_FILE=/run/secrets/jwt`,
/// `FLICK_NATS__PASSWORD_FILE=…`): what Docker and Kubernetes secrets provide. The variable
/// itself, when also set, wins. (No setting's own name ends in `_file`, so this never shadows
/// one.)
pub const FILE_SUFFIX: &str = "_FILE";

/// The settings given as `<variable>_FILE`, read (a trailing newline dropped).
fn secret_files() -> Result<figment::providers::Serialized<figment::value::Dict>, ConfigError> {
    let mut values = figment::value::Dict::new();
    for (name, path) in std::env::vars() {
        let Some(base) = name.strip_suffix(FILE_SUFFIX) else {
            continue;
        };
        let key = if let Some((_, target)) = ENV_ALIASES
            .iter()
            .find(|(alias, _)| base.eq_ignore_ascii_case(alias))
        {
            (*target).to_owned()
        } else if let Some(rest) = base.strip_prefix(ENV_PREFIX)
            && let Some((section, key)) = rest.split_once(ENV_SPLIT)
        {
            format!(
                "{}.{}",
                section.to_ascii_lowercase(),
                key.to_ascii_lowercase()
            )
        } else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|err| {
            ConfigError::new(
                key.clone(),
                format!("cannot read the file {path:?} named by {name}: {err}"),
            )
        })?;
        let value = text
            .strip_suffix('\n')
            .unwrap_or(&text)
            .trim_end_matches('\r');
        insert_dotted(&mut values, &key, value.to_owned());
    }
    Ok(figment::providers::Serialized::defaults(values))
}

fn insert_dotted(dict: &mut figment::value::Dict, key: &str, value: String) {
    match key.split_once('.') {
        Some((section, rest)) => {
            let entry = dict
                .entry(section.to_owned())
                .or_insert_with(|| figment::value::Value::from(figment::value::Dict::new()));
            if let figment::value::Value::Dict(_, inner) = entry {
                insert_dotted(inner, rest, value);
            }
        }
        None => {
            dict.insert(key.to_owned(), figment::value::Value::from(value));
        }
    }
}

/// Extracts and validates `T` from an assembled figment (tests build their own).
pub fn extract<T: DeserializeOwned + Validate>(figment: Figment) -> Result<T, ConfigError> {
    let config: T = figment.extract().map_err(ConfigError::from_figment)?;
    config
        .validate()
        .map_err(|err| err.with_origin_from(&figment))?;
    Ok(config)
}

/// Refuses the secret `value` of `setting` when it is published or obviously not random (see
/// the `secrets` module): one line naming the setting and how to generate a good value.
pub fn check_secret(setting: &str, value: &str, kind: SecretKind) -> Result<(), ConfigError> {
    match refusal(value, kind) {
        Some(reason) => Err(ConfigError::new(setting, reason)),
        None => Ok(()),
    }
}

/// A list setting given as a list (TOML, `[a, b]`) or as one comma-separated string (the usual
/// shape of an environment variable: `FLICK_NOTIFY__ALLOW_HOSTS=a,b`).
pub fn list_or_commas<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Shape {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Shape::deserialize(deserializer)? {
        Shape::List(items) => items,
        Shape::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Runs `check` for the setting named `setting`, turning a refusal into a [`ConfigError`].
pub fn check(setting: &str, ok: bool, message: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(setting, message()))
    }
}
