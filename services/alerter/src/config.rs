//! The alerter's configuration: `[nats]`, `[streams]`, `[database]`, `[log]`.

use serde::Deserialize;

use flick_shared::config::{
    ConfigError, DatabaseSettings, LogSettings, NatsSettings, StreamSettings, Validate,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub nats: NatsSettings,
    pub streams: StreamSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
}

impl flick_shared::service::ServiceConfig for Config {
    fn log(&self) -> &LogSettings {
        &self.log
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.nats.validate()?;
        self.streams.validate()?;
        self.database.validate()?;
        self.log.validate()
    }
}
