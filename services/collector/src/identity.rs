//! Which server this collector speaks for.

use std::path::Path;

use flick_shared::wire::ServerId;

use crate::config::CollectorSettings;

/// The configured id; else a UUID v5 of the machine id, which survives reboots and host renames;
/// else a UUID v5 of the host name.
pub fn resolve(settings: &CollectorSettings, hostname: &str) -> (ServerId, &'static str) {
    if let Some(id) = settings
        .server_id
        .as_deref()
        .and_then(|id| ServerId::parse(id).ok())
    {
        return (id, "configured");
    }
    match read_machine_id(Path::new(&settings.machine_id_path)) {
        Some(machine_id) => (
            ServerId::derived_from(&format!("machine-id:{machine_id}")),
            "machine id",
        ),
        None => (
            ServerId::derived_from(&format!("hostname:{hostname}")),
            "host name",
        ),
    }
}

fn read_machine_id(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_wins_then_machine_id_then_host_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let machine_id = dir.path().join("machine-id");
        std::fs::write(&machine_id, "3d1219c7c4c5404aaa1f6d2a48adfda4\n").expect("write");
        let mut settings = CollectorSettings {
            server_id: Some("web-01".into()),
            machine_id_path: machine_id.display().to_string(),
            ..CollectorSettings::default()
        };
        assert_eq!(resolve(&settings, "h").0.as_str(), "web-01");

        settings.server_id = None;
        let (from_machine, source) = resolve(&settings, "h");
        assert_eq!(source, "machine id");
        assert_eq!(
            from_machine,
            resolve(&settings, "other-host").0,
            "stable across renames"
        );

        settings.machine_id_path = dir.path().join("absent").display().to_string();
        let (from_host, source) = resolve(&settings, "h");
        assert_eq!(source, "host name");
        assert_ne!(from_host, from_machine);
    }
}
