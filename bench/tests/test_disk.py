from bench.disk import filesystem_of

MOUNTS = """/dev/vda / ext4 rw,relatime 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
/dev/vdb /var/lib/my\\040disk xfs rw 0 0
"""


def test_longest_mount_point_wins():
    assert filesystem_of("/var/tmp/x", MOUNTS).fstype == "ext4"
    shm = filesystem_of("/dev/shm/badkv", MOUNTS)
    assert shm.fstype == "tmpfs" and shm.in_memory
    assert "in memory" in shm.describe()


def test_escaped_mount_points_and_prefix_lookalikes():
    assert filesystem_of("/var/lib/my disk/data", MOUNTS).device == "/dev/vdb"
    assert filesystem_of("/dev/shmother", MOUNTS).fstype == "ext4"


def test_unknown_without_a_matching_mount():
    assert filesystem_of("/x", "tmpfs /dev/shm tmpfs rw 0 0\n") is None
