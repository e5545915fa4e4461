"""Which filesystems are the machine's own disks (docs/architecture.md §3.4): the one rule
the local reader (psutil's mounts) and the node_exporter reader (its filesystem families)
share. Pure.

A mount is a disk of the machine when its type lives on a local block device, it is not a
pseudo or network filesystem, and it is not an image or runtime internal mounted under
``/proc``, ``/sys``, ``/dev``, ``/snap`` or a container store. ``statvfs`` on anything else
may leave the machine (and hang), or measures nothing.
"""

from __future__ import annotations

from typing import Final

# Filesystems that live on a local block device (or a local pool); ``statvfs`` on them does
# not leave the machine. ``overlay`` is accepted only as ``/``: a container's root.
LOCAL_FSTYPES: Final = frozenset(
    {
        "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "bcachefs",
        "nilfs2", "vfat", "exfat", "ntfs", "ntfs3", "fuseblk", "hfsplus", "apfs",
    }
)  # fmt: skip
# Network and cluster filesystems: a ``statvfs`` on them can hang for minutes. Listed so the
# rejection is explicit; anything not in LOCAL_FSTYPES is rejected anyway, and so is every
# ``fuse.*`` userspace filesystem other than ``fuseblk``.
NETWORK_FSTYPES: Final = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph",
        "glusterfs", "9p", "afs", "ocfs2", "gfs2", "virtiofs", "vboxsf", "davfs", "wekafs",
        "panfs", "orangefs", "pvfs2", "quobyte", "fuse.sshfs", "fuse.glusterfs",
        "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs", "fuse.ceph",
    }
)  # fmt: skip
# Pseudo filesystems: no disk behind them (squashfs: read-only snap and image mounts, always
# full; autofs: a stat would trigger the automount).
PSEUDO_FSTYPES: Final = frozenset(
    {
        "proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs",
        "debugfs", "tracefs", "configfs", "pstore", "bpf", "mqueue", "hugetlbfs", "autofs",
        "binfmt_misc", "fusectl", "efivarfs", "rpc_pipefs", "nsfs", "ramfs", "squashfs",
        "selinuxfs", "fuse.lxcfs", "fuse.portal",
    }
)  # fmt: skip
# Local filesystems mounted here are images or runtime internals, not the machine's disks.
SKIPPED_MOUNT_PREFIXES: Final = (
    "/proc/", "/sys/", "/dev/", "/snap/", "/var/lib/docker/", "/var/lib/containers/",
)  # fmt: skip


def is_local_fs(fstype: str, mountpoint: str) -> bool:
    """Whether a mount may be ``statvfs``'ed without leaving (or hanging) the machine."""
    kind = fstype.strip().lower()
    if kind in NETWORK_FSTYPES or kind in PSEUDO_FSTYPES:
        return False
    if kind == "overlay":
        return mountpoint == "/"
    if kind not in LOCAL_FSTYPES:
        return False  # unknown, fuse.* and everything else: refuse rather than risk a hang
    return not mountpoint.startswith(SKIPPED_MOUNT_PREFIXES)
