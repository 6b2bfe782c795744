//! Disk I/O counters from `/proc/diskstats`, one entry per whole physical device.
//!
//! sysinfo's per-mount counters find a mount's device by resolving its name through `/dev`,
//! which a container does not have: inside the collector's container every counter read 0.
//! `/proc/diskstats` is not namespaced, so the same file gives the host's counters on the host
//! and in a container alike, and one code path serves both, with or without
//! `collector.host_root`.
//!
//! Only whole physical devices count, as node_exporter's default device filter has it:
//! partitions (`sda1`, `nvme0n1p2`) repeat their disk's I/O, and loop, RAM, zram, device-mapper
//! and md devices repeat the I/O of the disks beneath them (or are memory), so summing them
//! would count the same bytes twice or more.

use std::io;
use std::path::Path;

/// The kernel counts `/proc/diskstats` sectors in units of 512 bytes, whatever the device's
/// own sector size.
const SECTOR_BYTES: u64 = 512;

/// Where the kernel publishes the counters; in a container it is the host's file.
pub const PATH: &str = "/proc/diskstats";

/// One device's totals since boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCounters {
    pub name: String,
    pub read_bytes: u64,
    pub written_bytes: u64,
}

/// Reads and parses the counters at `path`.
pub fn read(path: &Path) -> io::Result<Vec<DeviceCounters>> {
    Ok(parse(&std::fs::read_to_string(path)?))
}

/// The whole physical devices of a `/proc/diskstats` text. Lines it cannot read are skipped:
/// the file's layout has only grown (14, then 18, then 20 fields), never changed.
pub fn parse(content: &str) -> Vec<DeviceCounters> {
    content
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // major minor name reads merged sectors_read ms writes merged sectors_written …
            let name = *fields.get(2)?;
            let sectors_read: u64 = fields.get(5)?.parse().ok()?;
            let sectors_written: u64 = fields.get(9)?.parse().ok()?;
            is_whole_physical_device(name).then(|| DeviceCounters {
                name: name.to_owned(),
                read_bytes: sectors_read.saturating_mul(SECTOR_BYTES),
                written_bytes: sectors_written.saturating_mul(SECTOR_BYTES),
            })
        })
        .collect()
}

/// Whether `name` is a whole physical disk, by the kernel's naming: node_exporter's default
/// exclusion (`^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`) plus device-mapper, md,
/// optical drives and the partitions of MMC cards.
fn is_whole_physical_device(name: &str) -> bool {
    const STACKED_OR_VIRTUAL: &[&str] = &["loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"];
    if name.is_empty()
        || STACKED_OR_VIRTUAL.iter().any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
    {
        return false;
    }
    !is_partition(name)
}

/// `sda1`, `vdb2`, `xvda3`, `hda1` (a letter-named disk followed by a number) and `nvme0n1p1`,
/// `mmcblk0p1` (a numbered disk, `p`, a number).
fn is_partition(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(|c: char| c.is_ascii_digit()) else {
        return false;
    };
    let stem = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let letter_disk = ["sd", "vd", "xvd", "hd"].iter().any(|prefix| {
        stem.strip_prefix(prefix).is_some_and(|letters| {
            !letters.is_empty() && letters.bytes().all(|b| b.is_ascii_lowercase())
        })
    });
    let numbered_disk = stem.strip_suffix('p').is_some_and(|disk| {
        disk.ends_with(|c: char| c.is_ascii_digit())
            && (disk.starts_with("nvme") || disk.starts_with("mmcblk"))
    });
    letter_disk || numbered_disk
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host with an NVMe disk (two partitions), a SATA disk with a partition under LVM, a
    /// loop device, zram swap, and a virtio disk without partitions; the newest kernels' 20
    /// fields and an older one's 14.
    const FIXTURE: &str = "\
 259       0 nvme0n1 120 0 8000 10 60 0 4000 20 0 30 30 0 0 0 0 0 0
 259       1 nvme0n1p1 20 0 1000 1 10 0 500 2 0 3 3 0 0 0 0 0 0
 259       2 nvme0n1p2 100 0 7000 9 50 0 3500 18 0 27 27 0 0 0 0 0 0
   8       0 sda 50 1 2048 5 40 2 1024 8 0 9 13 0 0 0 0 2 1
   8       1 sda1 50 1 2048 5 40 2 1024 8 0 9 13 0 0 0 0 0 0
 253       0 dm-0 49 0 2000 5 39 0 1000 8 0 9 13 0 0 0 0 0 0
   7       0 loop0 9 0 99 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 252       0 zram0 5 0 40 0 5 0 40 0 0 0 0 0 0 0 0 0 0
 254       0 vda 74475 12896 3987954 73365 41824 37675 5374800 53430 0 31564 137524
 179       0 mmcblk0 3 0 24 0 0 0 0 0 0 0 0 0 0 0
 179       1 mmcblk0p1 3 0 24 0 0 0 0 0 0 0 0 0 0 0
 garbage line
";

    #[test]
    fn keeps_whole_physical_devices_in_bytes() {
        let devices = parse(FIXTURE);
        let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda", "vda", "mmcblk0"]);
        assert_eq!(
            devices[0],
            DeviceCounters {
                name: "nvme0n1".into(),
                read_bytes: 8000 * 512,
                written_bytes: 4000 * 512,
            }
        );
        assert_eq!(devices[2].read_bytes, 3_987_954 * 512);
        assert_eq!(devices[2].written_bytes, 5_374_800 * 512);
    }

    #[test]
    fn names_of_disks_and_of_what_repeats_their_io() {
        for disk in [
            "sda", "sdaa", "vdb", "xvda", "hda", "nvme0n1", "nvme10n2", "mmcblk0",
        ] {
            assert!(is_whole_physical_device(disk), "{disk}");
        }
        for other in [
            "sda1",
            "sdaa12",
            "vdb2",
            "xvda3",
            "nvme0n1p1",
            "mmcblk0p2",
            "loop7",
            "ram0",
            "zram0",
            "dm-3",
            "md127",
            "sr0",
            "fd0",
            "nbd0",
            "",
        ] {
            assert!(!is_whole_physical_device(other), "{other}");
        }
    }

    #[test]
    fn reads_this_hosts_counters() {
        let devices = read(Path::new(PATH)).expect("/proc/diskstats is readable");
        assert!(!devices.is_empty(), "a host has at least one disk");
        assert!(
            devices.iter().any(|d| d.read_bytes > 0),
            "a running host has read from its disk: {devices:?}"
        );
    }
}
