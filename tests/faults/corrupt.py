"""Damage to a stopped server's log, as a failing disk would leave it.

coordd keeps its Raft log in LMDB (<data dir>/log/data.mdb), every record
sealed with a CRC-32C over its key and value (docs/formats). A test damages
one record and checks that the server refuses it.
"""

import os


# What a workload writes into exactly one znode value so that
# corrupt_log_record finds that value's record.
MARKER = b"coord-fault-corrupt-me-7f3a9c"


def log_file(data_dir):
    return os.path.join(data_dir, "log", "data.mdb")


def corrupt_log_record(data_dir, rng, marker=MARKER):
    """Flips bytes inside the one log record whose data carries `marker`
    (bytes a workload wrote into one znode value and no other record
    holds; MARKER unless given) in the log of the server whose data directory is `data_dir`,
    which must be stopped. Returns a description of what was changed.

    The record is found by those bytes rather than by parsing LMDB's
    pages: LMDB copies a page on every change, so a record's bytes can
    also sit in pages freed since, and every copy found is damaged (the
    same bytes, at most 16 copies), so that the live one surely is.
    Only bytes inside `marker` change, one to three of them, each XORed
    with a non-zero value: the record's value, which its checksum
    covers, never LMDB's own page structure.

    Raises LookupError when no record holds the marker.
    """
    if isinstance(marker, str):
        marker = marker.encode()
    path = log_file(data_dir)
    with open(path, "r+b") as f:
        data = f.read()
        offsets = []
        at = data.find(marker)
        while at >= 0 and len(offsets) < 16:
            offsets.append(at)
            at = data.find(marker, at + 1)
        if not offsets:
            raise LookupError("%s holds no record with %r" % (path, marker))
        positions = sorted(rng.sample(range(len(marker)), min(len(marker), rng.randint(1, 3))))
        flips = [(p, rng.randint(1, 255)) for p in positions]
        for base in offsets:
            for p, mask in flips:
                f.seek(base + p)
                f.write(bytes([data[base + p] ^ mask]))
        f.flush()
        os.fsync(f.fileno())
    return "%s: flipped bytes %s of the record holding %r (%d cop%s in the file, at %s)" % (
        path, ", ".join("+%d^0x%02x" % (p, m) for p, m in flips), marker, len(offsets),
        "y" if len(offsets) == 1 else "ies", ", ".join(str(o) for o in offsets))
