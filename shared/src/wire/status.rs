//! `ServerStatus`: a collector's announcement of a planned stop, on `<prefix>.status.<serverId>`,
//! so that a reboot or a deploy is shown as such instead of paging someone as `offline`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Payload, ServerId, check_not_in_future, default_version};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    #[serde(default = "default_version")]
    pub v: u32,
    pub server_id: ServerId,
    pub state: StatusState,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::timestamp::option"
    )]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    /// The collector started (or restarted) and is about to publish samples.
    Starting,
    /// The collector was asked to stop (SIGTERM/SIGINT) and is exiting on purpose.
    Stopping,
}

impl Payload for ServerStatus {
    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        match self.at {
            Some(at) => check_not_in_future("at", at, now),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    #[test]
    fn the_design_documents_minimal_form_decodes() {
        let status: ServerStatus =
            decode(br#"{"v":1,"serverId":"s1","state":"stopping"}"#, Utc::now()).expect("decodes");
        assert_eq!(status.state, StatusState::Stopping);
        assert_eq!(status.at, None);
    }
}
