"""A full disk under one coordd server: its data directory on a small
tmpfs of its own, filled up by a filler file and freed again.

Mounting needs root (CAP_SYS_ADMIN): when the mount fails, mount() raises
Unavailable with the reason, for the test to skip with. cleanup() always
unmounts (lazily, should a process still hold a file there) and removes
the mount point.
"""

import errno
import os
import subprocess

CHUNK_BYTES = 1 << 20
# A filler file never grows past this, whatever the tmpfs says.
FILL_BYTES_MAX = 1 << 30


class Unavailable(Exception):
    """The fault cannot be made here (no root, no tmpfs)."""


class DiskFull:
    """A tmpfs of `size_bytes` mounted at `path` (created if missing;
    anything in it is hidden while mounted)."""

    def __init__(self, path, size_bytes):
        self.path = path
        self.size_bytes = size_bytes
        self.filler = os.path.join(path, "filler")
        self.mounted = False
        self.made_dir = False

    def mount(self):
        if not os.path.isdir(self.path):
            os.makedirs(self.path)
            self.made_dir = True
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % self.size_bytes, "tmpfs",
                            self.path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        if r.returncode != 0:
            raise Unavailable("cannot mount a tmpfs at %s (needs root): %s" % (
                self.path, r.stdout.decode(errors="replace").strip()))
        self.mounted = True
        return self

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave_bytes=0):
        """Grows the filler file until the file system is full (ENOSPC)
        or only `leave_bytes` are free; returns the bytes free after."""
        # Unbuffered: a buffered file keeps what a short write left over and
        # raises ENOSPC again when it is closed.
        with open(self.filler, "ab", buffering=0) as f:
            written = 0
            while written < FILL_BYTES_MAX:
                room = self.free_bytes() - leave_bytes
                if room <= 0:
                    break
                try:
                    n = f.write(b"\0" * min(CHUNK_BYTES, room))
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                if not n:
                    break
                written += n
        return self.free_bytes()

    def free(self):
        """Removes the filler: the space is back."""
        try:
            os.remove(self.filler)
        except FileNotFoundError:
            pass

    def cleanup(self):
        if self.mounted:
            r = subprocess.run(["umount", self.path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
            self.mounted = False
        if self.made_dir:
            try:
                os.rmdir(self.path)
            except OSError:
                pass
