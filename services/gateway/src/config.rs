//! The gateway's configuration: `[nats]`, `[streams]`, `[database]`, `[log]`, `[gateway]`.

use serde::Deserialize;

use flick_shared::config::{
    ConfigError, DatabaseSettings, LogSettings, NatsSettings, StreamSettings, Validate, check,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub nats: NatsSettings,
    pub streams: StreamSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub gateway: GatewaySettings,
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Address to listen on. `HOST` sets it too.
    pub host: String,
    /// Port to listen on (0 picks a free one). `PORT` sets it too.
    pub port: u16,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
        }
    }
}

impl GatewaySettings {
    pub fn listen_address(&self) -> Option<std::net::SocketAddr> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .ok()
            .or_else(|| format!("[{}]:{}", self.host, self.port).parse().ok())
    }
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
        self.log.validate()?;
        check(
            "gateway.host",
            self.gateway.listen_address().is_some(),
            || format!("{:?} is not an IP address to listen on", self.gateway.host),
        )
    }
}
