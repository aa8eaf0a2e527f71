"""A small ZooKeeper 3.8 client-protocol codec over raw sockets, for tests.

Encodes the Jute records a client sends (handshake, request header, every
request body) and decodes what a server answers, so that tests can send
exact bytes, including broken ones, and look at every frame that comes back.
Written from the wire description in the project docs; stdlib only.
"""

import socket
import struct
import time

# Opcodes (request header `type`).
CREATE = 1
DELETE = 2
EXISTS = 3
GET_DATA = 4
SET_DATA = 5
GET_ACL = 6
SET_ACL = 7
GET_CHILDREN = 8
SYNC = 9
PING = 11
GET_CHILDREN2 = 12
CHECK = 13
MULTI = 14
CREATE2 = 15
RECONFIG = 16
CHECK_WATCHES = 17
REMOVE_WATCHES = 18
CREATE_CONTAINER = 19
CREATE_TTL = 21
MULTI_READ = 22
AUTH = 100
SET_WATCHES = 101
SASL = 102
GET_EPHEMERALS = 103
GET_ALL_CHILDREN_NUMBER = 104
SET_WATCHES2 = 105
ADD_WATCH = 106
WHO_AM_I = 107
CLOSE_SESSION = -11

OP_NAMES = {
    CREATE: "create", DELETE: "delete", EXISTS: "exists", GET_DATA: "getData",
    SET_DATA: "setData", GET_ACL: "getACL", SET_ACL: "setACL",
    GET_CHILDREN: "getChildren", SYNC: "sync", PING: "ping",
    GET_CHILDREN2: "getChildren2", CHECK: "check", MULTI: "multi", CREATE2: "create2",
    RECONFIG: "reconfig", CHECK_WATCHES: "checkWatches", REMOVE_WATCHES: "removeWatches",
    CREATE_CONTAINER: "createContainer", CREATE_TTL: "createTTL", MULTI_READ: "multiRead",
    AUTH: "auth", SET_WATCHES: "setWatches", SASL: "sasl", GET_EPHEMERALS: "getEphemerals",
    GET_ALL_CHILDREN_NUMBER: "getAllChildrenNumber", SET_WATCHES2: "setWatches2",
    ADD_WATCH: "addWatch", WHO_AM_I: "whoAmI", CLOSE_SESSION: "closeSession",
}

# Writes: a successful reply's zxid is the zxid the write was given.
WRITE_OPS = {CREATE, DELETE, SET_DATA, SET_ACL, MULTI, CREATE2, CREATE_CONTAINER,
             CREATE_TTL, CLOSE_SESSION}

# Error codes.
OK = 0
RUNTIME_INCONSISTENCY = -2
MARSHALLING_ERROR = -5
UNIMPLEMENTED = -6
BAD_ARGUMENTS = -8
NO_NODE = -101
NO_AUTH = -102
BAD_VERSION = -103
NO_CHILDREN_FOR_EPHEMERALS = -108
NODE_EXISTS = -110
NOT_EMPTY = -111
SESSION_EXPIRED = -112
INVALID_ACL = -114
AUTH_FAILED = -115
NO_WATCHER = -121
RECONFIG_DISABLED = -123

# Permissions and well-known ACLs: (perms, scheme, id).
READ, WRITE, CREATE_PERM, DELETE_PERM, ADMIN, ALL = 1, 2, 4, 8, 16, 31
OPEN_ACL = [(ALL, "world", "anyone")]

# Watch event types.
NODE_CREATED, NODE_DELETED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED = 1, 2, 3, 4

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")
STAT_FORMAT = ">qqqqiiiqiiq"
STAT_BYTES = struct.calcsize(STAT_FORMAT)


class DecodeError(Exception):
    pass


class Writer:
    def __init__(self):
        self.parts = []

    def int(self, v):
        self.parts.append(struct.pack(">i", v))
        return self

    def long(self, v):
        self.parts.append(struct.pack(">q", v))
        return self

    def bool(self, v):
        self.parts.append(b"\x01" if v else b"\x00")
        return self

    def buffer(self, b):
        if b is None:
            return self.int(-1)
        self.int(len(b))
        self.parts.append(bytes(b))
        return self

    def ustring(self, s):
        if s is None:
            return self.int(-1)
        return self.buffer(s.encode() if isinstance(s, str) else s)

    def strings(self, items):
        if items is None:
            return self.int(-1)
        self.int(len(items))
        for s in items:
            self.ustring(s)
        return self

    def acls(self, acls):
        if acls is None:
            return self.int(-1)
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).ustring(scheme).ustring(ident)
        return self

    def raw(self, b):
        self.parts.append(b)
        return self

    def bytes(self):
        return b"".join(self.parts)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError("need %d bytes at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def long(self):
        return struct.unpack(">q", self.take(8))[0]

    def bool(self):
        return self.take(1)[0] != 0

    def buffer(self):
        n = self.int()
        if n == -1:
            return None
        return self.take(n)

    def ustring(self):
        b = self.buffer()
        return None if b is None else b.decode()

    def strings(self):
        n = self.int()
        if n == -1:
            return None
        return [self.ustring() for _ in range(n)]

    def stat(self):
        return dict(zip(STAT_FIELDS, struct.unpack(STAT_FORMAT, self.take(STAT_BYTES))))

    def acls(self):
        n = self.int()
        if n == -1:
            return None
        return [(self.int(), self.ustring(), self.ustring()) for _ in range(n)]

    def remaining(self):
        return len(self.data) - self.pos


# ---------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------

def create_body(path, data=b"", acl=OPEN_ACL, flags=0, ttl=None):
    w = Writer().ustring(path).buffer(data).acls(acl).int(flags)
    if ttl is not None:
        w.long(ttl)
    return w.bytes()


def path_version_body(path, version=-1):
    return Writer().ustring(path).int(version).bytes()


def path_watch_body(path, watch=False):
    return Writer().ustring(path).bool(watch).bytes()


def path_body(path):
    return Writer().ustring(path).bytes()


def set_data_body(path, data, version=-1):
    return Writer().ustring(path).buffer(data).int(version).bytes()


def set_acl_body(path, acl, version=-1):
    return Writer().ustring(path).acls(acl).int(version).bytes()


def path_int_body(path, value):
    return Writer().ustring(path).int(value).bytes()


def auth_body(scheme, auth):
    return Writer().int(0).ustring(scheme).buffer(auth).bytes()


def set_watches_body(rel_zxid, data=(), exist=(), child=(), persistent=None, recursive=None):
    w = Writer().long(rel_zxid).strings(list(data)).strings(list(exist)).strings(list(child))
    if persistent is not None or recursive is not None:
        w.strings(list(persistent or ())).strings(list(recursive or ()))
    return w.bytes()


def multi_body(ops):
    """ops: list of (opcode, body bytes)."""
    w = Writer()
    for opcode, body in ops:
        w.int(opcode).bool(False).int(-1).raw(body)
    w.int(-1).bool(True).int(-1)
    return w.bytes()


def reconfig_body(joining="", leaving="", members="", config_id=-1):
    return Writer().ustring(joining).ustring(leaving).ustring(members).long(config_id).bytes()


def connect_body(session_id=0, passwd=b"\x00" * 16, last_zxid=0, timeout_ms=10000,
                 read_only=False, with_read_only=True):
    w = Writer().int(0).long(last_zxid).int(timeout_ms).long(session_id).buffer(passwd)
    if with_read_only:
        w.bool(read_only)
    return w.bytes()


# ---------------------------------------------------------------------------
# Response bodies
# ---------------------------------------------------------------------------

def decode_multi(r):
    results = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            break
        if typ == -1:
            results.append(("error", r.int()))
        elif typ == CREATE:
            results.append(("create", r.ustring()))
        elif typ == CREATE2:
            results.append(("create2", r.ustring(), r.stat()))
        elif typ == DELETE:
            results.append(("delete",))
        elif typ == SET_DATA:
            results.append(("setData", r.stat()))
        elif typ == CHECK:
            results.append(("check",))
        elif typ == GET_CHILDREN:
            results.append(("getChildren", r.strings()))
        elif typ == GET_DATA:
            results.append(("getData", r.buffer(), r.stat()))
        else:
            raise DecodeError("multi result type %d" % typ)
        if err != 0 and typ != -1:
            results[-1] = results[-1] + (("header_err", err),)
    return results


def decode_body(opcode, r):
    """Decodes a successful reply's body for `opcode`; returns a plain value."""
    if opcode == CREATE:
        return r.ustring()
    if opcode in (CREATE2, CREATE_CONTAINER, CREATE_TTL):
        return (r.ustring(), r.stat())
    if opcode in (EXISTS, SET_DATA, SET_ACL):
        return r.stat()
    if opcode in (GET_DATA, RECONFIG):
        return (r.buffer(), r.stat())
    if opcode == GET_ACL:
        return (r.acls(), r.stat())
    if opcode == GET_CHILDREN:
        return r.strings()
    if opcode == GET_CHILDREN2:
        return (r.strings(), r.stat())
    if opcode == SYNC:
        return r.ustring()
    if opcode in (MULTI, MULTI_READ):
        return decode_multi(r)
    if opcode == SASL:
        return r.buffer()
    if opcode == GET_EPHEMERALS:
        return r.strings()
    if opcode in (GET_ALL_CHILDREN_NUMBER, ADD_WATCH):
        return r.int()
    if opcode == WHO_AM_I:
        n = r.int()
        return [] if n == -1 else [(r.ustring(), r.ustring()) for _ in range(n)]
    return None


class Frame:
    """One frame from the server after the handshake."""

    def __init__(self, xid, zxid, err, body):
        self.xid, self.zxid, self.err, self.body = xid, zxid, err, body

    def is_event(self):
        return self.xid == -1

    def event(self):
        r = Reader(self.body)
        return (r.int(), r.int(), r.ustring())

    def __repr__(self):
        return "Frame(xid=%d, zxid=%d, err=%d, %d body bytes)" % (
            self.xid, self.zxid, self.err, len(self.body))


class Closed(Exception):
    """The server closed the connection."""


class Conn:
    """One raw TCP connection to a ZooKeeper-protocol server."""

    def __init__(self, port, timeout_s=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout_s = timeout_s
        self.buf = b""
        self.next_xid = 1
        self.session_id = 0
        self.passwd = b""
        self.last_zxid = 0

    # -- bytes ------------------------------------------------------------
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no data from server")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise TimeoutError("no data from server")
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed()
            self.buf += chunk

    def read_frame_bytes(self, timeout_s=None):
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        self._fill(4, deadline)
        n = struct.unpack(">i", self.buf[:4])[0]
        if n < 0 or n > 64 << 20:
            raise DecodeError("server sent frame length %d" % n)
        self._fill(4 + n, deadline)
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return payload

    def read_frame(self, timeout_s=None):
        payload = self.read_frame_bytes(timeout_s)
        r = Reader(payload)
        xid, zxid, err = r.int(), r.long(), r.int()
        if zxid > 0 and xid != -1:
            self.last_zxid = max(self.last_zxid, zxid)
        return Frame(xid, zxid, err, payload[16:])

    def is_closed(self, timeout_s=None):
        """True when the server closes the connection within the timeout
        (any frames still in flight are discarded)."""
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        try:
            while True:
                self._fill(len(self.buf) + 1, deadline)
                self.buf = b""
        except Closed:
            return True
        except TimeoutError:
            return False

    # -- session ----------------------------------------------------------
    def handshake(self, **kw):
        """Sends a ConnectRequest; returns the decoded ConnectResponse as a
        dict (with its raw length), or raises Closed."""
        self.send_frame(connect_body(**kw))
        payload = self.read_frame_bytes()
        r = Reader(payload)
        resp = {"protocolVersion": r.int(), "timeOut": r.int(), "sessionId": r.long(),
                "passwd": r.buffer(), "length": len(payload)}
        if r.remaining():
            resp["readOnly"] = r.bool()
        resp["trailing"] = r.remaining()
        if resp["sessionId"]:
            self.session_id = resp["sessionId"]
            self.passwd = resp["passwd"]
        return resp

    # -- requests ---------------------------------------------------------
    def send_request(self, opcode, body=b"", xid=None):
        if xid is None:
            xid = self.next_xid
            self.next_xid += 1
        self.send_frame(struct.pack(">ii", xid, opcode) + body)
        return xid

    def call(self, opcode, body=b"", xid=None, timeout_s=None):
        """Sends one request and reads until its reply. Returns
        (events before the reply, reply frame)."""
        xid = self.send_request(opcode, body, xid)
        events = []
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f.is_event():
                events.append(f)
                continue
            if f.xid != xid:
                raise DecodeError("reply xid %d while waiting for %d" % (f.xid, xid))
            return events, f

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def digest_id(user, password):
    import base64
    import hashlib
    h = hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()
    return "%s:%s" % (user, base64.b64encode(h).decode())
