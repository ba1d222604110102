"""Waiting out a file system artefact between benchmark scenarios.

ext4 without a journal (this VM's root file system) skips every inode
deleted in the last 60 s when it allocates a new one (recently_deleted()
in fs/ext4/ialloc.c, checked only when there is no journal; 300 s more
while the inode table block is dirty, hence the sync), one inode table
lookup each: after a scenario deleted hundreds of files, every file the
next one creates pays for them (bench/RESULTS.md, "ext4 without a
journal"). So before a scenario the driver waits that window out when
many files went recently.

Deletions are counted by note_deleted(); settle_deletions() runs before a
scenario starts.
"""

import os
import time

RECENTLY_DELETED_SECONDS = 61
RECENTLY_DELETED_MANY = 100
_deleted = {"at": 0.0, "count": 0}


def note_deleted(count):
    if count:
        _deleted["count"] = (_deleted["count"] if time.monotonic() - _deleted["at"]
                             < RECENTLY_DELETED_SECONDS else 0) + count
        _deleted["at"] = time.monotonic()


def ext4_without_journal(path):
    """True when `path` is on ext4 and its block device has no jbd2 journal
    (/proc/fs/jbd2/<dev>-<inode> exists for each journal). The device's
    kernel name comes from st_dev, as /proc/fs/ext4/<dev> uses it."""
    st = os.stat(path)
    sys_dev = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    if not os.path.exists(sys_dev):
        return False  # no block device (tmpfs, overlay)
    device = os.path.basename(os.path.realpath(sys_dev))
    if not os.path.isdir(f"/proc/fs/ext4/{device}"):
        return False
    journals = os.listdir("/proc/fs/jbd2") if os.path.isdir("/proc/fs/jbd2") else []
    return not any(j.startswith(device + "-") for j in journals)


def settle_deletions(path, log):
    """Waits out the window if many files went recently from the file
    system of `path` and it is ext4 without a journal."""
    if _deleted["count"] < RECENTLY_DELETED_MANY:
        return
    os.makedirs(path, exist_ok=True)
    if not ext4_without_journal(os.path.realpath(path)):
        return
    os.sync()  # a dirty inode table block would stretch the window to 360 s
    wait = _deleted["at"] + RECENTLY_DELETED_SECONDS - time.monotonic()
    if wait > 0:
        log(f"waiting {wait:.0f} s: {_deleted['count']} files were deleted, and ext4 without a "
            "journal makes each new file skip them for 60 s")
        time.sleep(wait)  # the kernel's window, not a synchronisation
