//! Which mounts count as real filesystems, and their space as `df` reports it.
//!
//! sysinfo lists the mounts but gives only total and available space: the free blocks, which
//! `df`'s "Used" is computed from, come from `statvfs` on each mount point (through rustix, as
//! the workspace forbids `unsafe`). With reserved blocks, total − available counts them as
//! used, and a nearly empty root filesystem showed 72 % where `df` said 13 %.

use std::io;
use std::path::Path;

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

/// A filesystem's space, in bytes, as `statvfs` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total_bytes: u64,
    /// Free blocks, including those reserved for root.
    pub free_bytes: u64,
    /// Free blocks an ordinary user may write to.
    pub available_bytes: u64,
}

impl Space {
    /// From `statvfs`'s block counts, which are in units of the fragment size (`f_frsize`);
    /// a filesystem reporting no fragment size counts in blocks (`f_bsize`), as `df` does.
    pub fn from_blocks(
        fragment_size: u64,
        block_size: u64,
        blocks: u64,
        free: u64,
        available: u64,
    ) -> Self {
        let unit = if fragment_size > 0 {
            fragment_size
        } else {
            block_size
        };
        Self {
            total_bytes: blocks.saturating_mul(unit),
            free_bytes: free.saturating_mul(unit),
            available_bytes: available.saturating_mul(unit),
        }
    }

    /// Reads the space of the filesystem mounted at `mount_point`.
    pub fn of(mount_point: &Path) -> io::Result<Self> {
        let stat = rustix::fs::statvfs(mount_point)?;
        Ok(Self::from_blocks(
            stat.f_frsize,
            stat.f_bsize,
            stat.f_blocks,
            stat.f_bfree,
            stat.f_bavail,
        ))
    }

    /// Used as `df` counts it: total − free. Reserved blocks are not used, only unavailable.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.free_bytes)
    }
}

/// One mount: sysinfo's entry with the space `statvfs` reported for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub file_system: String,
    pub space: Space,
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
        let space = mount.space;
        if space.total_bytes == 0 || VIRTUAL_TYPES.contains(&mount.file_system.as_str()) {
            continue;
        }
        let usage = MountUsage {
            mount_point: mount.mount_point,
            device: mount.device,
            file_system: mount.file_system,
            total_bytes: space.total_bytes,
            used_bytes: space.used_bytes(),
            available_bytes: Some(space.available_bytes),
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

#[cfg(test)]
mod tests {
    use flick_shared::wire::fullest_mount_percent;

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

    /// A mount with no reserved blocks: free is available.
    fn mount(device: &str, point: &str, fs: &str, total: u64, available: u64) -> Mount {
        Mount {
            device: device.into(),
            mount_point: point.into(),
            file_system: fs.into(),
            space: Space {
                total_bytes: total,
                free_bytes: available,
                available_bytes: available,
            },
        }
    }

    #[test]
    fn reserved_blocks_are_neither_used_nor_available() {
        // The root filesystem of this kind of machine: 66,053,021 blocks of 4 KiB, 62,558,577
        // free, 20,327,028 available to users (the rest reserved), as statvfs reports them.
        let space = Space::from_blocks(4096, 4096, 66_053_021, 62_558_577, 20_327_028);
        assert_eq!(space.total_bytes, 66_053_021 * 4096);
        assert_eq!(space.used_bytes(), (66_053_021 - 62_558_577) * 4096);
        let usage = &real_filesystems([Mount {
            device: "/dev/vda".into(),
            mount_point: "/".into(),
            file_system: "ext4".into(),
            space,
        }])[0];
        assert_eq!(usage.available_bytes, Some(20_327_028 * 4096));
        // df: used / (used + available) = 3,494,444 / 23,821,472 = 14.67 %, shown as 15 %;
        // total − available would have said 69 %.
        let percent = usage.usage_percent();
        assert!((percent - 14.669).abs() < 0.01, "{percent}");
        assert_eq!(percent.ceil(), 15.0);
        // A filesystem with no fragment size counts in blocks.
        assert_eq!(Space::from_blocks(0, 512, 10, 5, 5).total_bytes, 5_120);
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
        assert!((fullest_mount_percent(&mounts) - 90.0).abs() < 1e-9);
    }
}
