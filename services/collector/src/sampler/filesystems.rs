//! Which mounts count as real filesystems, and the one figure `diskUsage` reports.

use flick_shared::wire::MountUsage;

/// Filesystem types that hold no user data or that mirror another mount (container layers,
/// kernel interfaces, FUSE views). sysinfo already leaves out proc, sysfs, tmpfs and the like.
const VIRTUAL_TYPES: &[&str] = &[
    "overlay",
    "aufs",
    "nsfs",
    "tracefs",
    "debugfs",
    "securityfs",
    "fusectl",
    "configfs",
    "binfmt_misc",
    "bpf",
    "efivarfs",
    "ramfs",
    "autofs",
    "shm",
    "none",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "fuse.snapfuse",
];

/// One mount as sysinfo reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub file_system: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// The mounts of a host whose root filesystem is mounted at `root` (a container monitoring its
/// host): only those under `root`, named as the host names them (`/host/boot` is `/boot`). The
/// container's own layers and bind mounts are not the host's disks.
pub fn under_root(mounts: Vec<Mount>, root: &str) -> Vec<Mount> {
    let root = root.trim_end_matches('/');
    mounts
        .into_iter()
        .filter_map(|mut mount| {
            let rest = mount.mount_point.strip_prefix(root)?;
            if !rest.is_empty() && !rest.starts_with('/') {
                return None;
            }
            mount.mount_point = if rest.is_empty() {
                "/".to_owned()
            } else {
                rest.to_owned()
            };
            Some(mount)
        })
        .collect()
}

/// Real filesystems only, one entry per device (bind mounts of the same device collapse into the
/// shortest mount point), sorted by mount point.
pub fn real_filesystems(mounts: impl IntoIterator<Item = Mount>) -> Vec<MountUsage> {
    let mut by_device: Vec<MountUsage> = Vec::new();
    for mount in mounts {
        if mount.total_bytes == 0 || VIRTUAL_TYPES.contains(&mount.file_system.as_str()) {
            continue;
        }
        let usage = MountUsage {
            used_bytes: mount.total_bytes.saturating_sub(mount.available_bytes),
            mount_point: mount.mount_point,
            device: mount.device,
            file_system: mount.file_system,
            total_bytes: mount.total_bytes,
        };
        match by_device
            .iter_mut()
            .find(|seen| seen.device == usage.device)
        {
            Some(seen) if usage.mount_point.len() < seen.mount_point.len() => *seen = usage,
            Some(_) => {}
            None => by_device.push(usage),
        }
    }
    by_device.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    by_device
}

/// The fullest filesystem's usage: a single nearly full mount is what a disk alert must catch,
/// and an average over a large empty data disk would hide it.
pub fn fullest_percent(mounts: &[MountUsage]) -> f64 {
    mounts
        .iter()
        .map(MountUsage::usage_percent)
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_a_host_root_only_the_hosts_mounts_count_under_their_own_names() {
        let mounts = vec![
            mount("overlay", "/", "overlay", 100, 50),
            mount("/dev/sda1", "/etc/hosts", "ext4", 100, 50),
            mount("/dev/sda1", "/host", "ext4", 100, 50),
            mount("/dev/sda2", "/host/boot", "vfat", 10, 5),
            mount("/dev/sdb1", "/hostdata", "ext4", 10, 5),
        ];
        let points: Vec<String> = under_root(mounts, "/host/")
            .into_iter()
            .map(|m| m.mount_point)
            .collect();
        assert_eq!(points, ["/", "/boot"]);
    }

    fn mount(device: &str, point: &str, fs: &str, total: u64, available: u64) -> Mount {
        Mount {
            device: device.into(),
            mount_point: point.into(),
            file_system: fs.into(),
            total_bytes: total,
            available_bytes: available,
        }
    }

    #[test]
    fn keeps_real_devices_once_and_reports_the_fullest() {
        let mounts = real_filesystems([
            mount("/dev/vda", "/etc/hosts", "ext4", 100, 40),
            mount("/dev/vda", "/", "ext4", 100, 40),
            mount("overlay", "/var/lib/docker/x", "overlay", 100, 1),
            mount("/dev/vdb", "/data", "xfs", 1_000, 900),
            mount("/dev/vdc", "/boot/efi", "vfat", 0, 0),
            mount("tank/home", "/home", "zfs", 10, 1),
        ]);
        let points: Vec<_> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
        assert_eq!(points, ["/", "/data", "/home"]);
        assert_eq!(mounts[0].used_bytes, 60);
        assert!((fullest_percent(&mounts) - 90.0).abs() < 1e-9);
        assert_eq!(fullest_percent(&[]), 0.0);
    }
}
