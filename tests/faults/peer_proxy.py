"""TCP proxies in front of coordd's ports, which the test controls: the
links between any two servers, and between clients and a server, pass, are
cut, or are delayed, without privileges and without touching the servers.

Every server of a cluster dials its peers at the addresses its membership
names, the same for all servers (the founding entries must be identical).
So the membership names the peer proxies, each server listens on a port of
its own (--peer-port), and all connections to server j go through peer
proxy j. A peer proxy tells the pairs apart by the first message of every
connection, the peer handshake's Hello (docs/formats/peer-handshake.md): it
names the dialer and the server it expects to reach.

A cut pair's peer connections are closed at once, and new ones are held
open without forwarding a byte (a blackhole: the dialer's handshake times
out, as across a real partition, rather than failing fast). Healing closes
the held ones, so that the dialers reconnect.

A one-way cut drops the bytes of one direction only: the link stays up
and one server goes on hearing the other until the deaf side's idle
timeout closes it; new links then fail their handshake. Healing a one-way
cut closes the links it touched, whose streams lost bytes. Loss is what
TCP makes of lost packets: some chunks arrive late, after a
retransmission timeout, never out of order.

Each set of proxies runs on one asyncio loop in a thread of its own; the
control methods may be called from any thread.
"""

import asyncio
import random
import struct
import threading

HELLO_HEADER = 8  # magic "CDPR", version, kind, body length (u16 LE)
HELLO_KIND = 1
HELLO_IDS = 18  # flags, reserved, dialer id (u64 LE), acceptor id (u64 LE)
CHUNK_BYTES = 64 * 1024


class _Proxies:
    """The loop, the listening sockets and the live links of a set of
    proxies; subclasses decide what each accepted connection becomes."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers = []
        self.links = {}  # key -> transports of its live links (both sides of each)
        self.held = {}  # key -> transports held open without forwarding

    def _call(self, fn, *args):
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(10)

    def _listen(self, listen_port, serve):
        async def listen():
            self.servers.append(await asyncio.start_server(serve, "127.0.0.1", listen_port))
        self._call(listen)

    def close(self):
        async def stop():
            for s in self.servers:
                s.close()
            for group in list(self.links.values()) + list(self.held.values()):
                for t in list(group):
                    t.abort()
        try:
            self._call(stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def _abort(self, table, key):
        for t in list(table.get(key, ())):
            t.abort()

    async def _forward(self, key, reader, writer, target_port, first=b"", delay=None,
                       passes_up=None, passes_down=None):
        """Connects to the target and copies both ways until either side
        closes; `first` goes to the target before anything else. A
        direction whose passes_*() is false drops what it reads."""
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.transport.abort()
            return False
        group = self.links.setdefault(key, set())
        group.update((writer.transport, up_writer.transport))
        up_writer.write(first)
        try:
            await asyncio.gather(_copy(reader, up_writer, delay, passes_up),
                                 _copy(up_reader, writer, delay, passes_down))
        finally:
            group.discard(writer.transport)
            group.discard(up_writer.transport)
            writer.transport.abort()
            up_writer.transport.abort()
        return True

    async def _hold(self, key, reader, writer):
        """Reads and drops everything until the other side closes or the
        key is healed."""
        group = self.held.setdefault(key, set())
        group.add(writer.transport)
        try:
            while await reader.read(CHUNK_BYTES):
                pass
        except ConnectionError:
            pass
        finally:
            group.discard(writer.transport)
            writer.transport.abort()


async def _copy(reader, writer, delay=None, passes=None):
    """Copies until EOF; a chunk read while passes() is false is dropped.
    With `delay`, each chunk is delivered delay() seconds after it was
    read, as over a long link: chunks in flight overlap, so the delay does
    not add up, and a chunk never overtakes the one before it (one held
    back by a retransmission holds back those behind it, as in TCP)."""
    if delay is None:
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                if passes is None or passes():
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
        return
    loop = asyncio.get_running_loop()
    line = asyncio.Queue()

    async def deliver():
        while True:
            at, data = await line.get()
            if data is None:
                return
            wait_s = at - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    last_at = 0.0
    try:
        while not sender.done():
            data = await reader.read(CHUNK_BYTES)
            if not data:
                break
            if passes is not None and not passes():
                continue
            last_at = max(last_at, loop.time() + delay())
            line.put_nowait((last_at, data))
        line.put_nowait((last_at, None))
        await sender
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        sender.cancel()
        writer.transport.abort()


class PeerProxies(_Proxies):
    def __init__(self):
        super().__init__()
        self.cut = set()  # frozenset({a, b}) of ids whose links are cut
        self.one_way = set()  # (a, b): bytes from a to b are dropped
        self.delay_ms = (0, 0)  # (base, jitter) for every forwarded chunk
        self.loss = (0.0, 0)  # (probability, retransmission delay ms) per chunk
        self.counts = {"links": 0, "blackholed": 0, "closed_by_cut": 0, "not_hello": 0}

    def add(self, listen_port, target_port):
        """A proxy on 127.0.0.1:listen_port for the server whose peer
        listener is 127.0.0.1:target_port."""
        self._listen(listen_port, lambda r, w: self._serve(r, w, target_port))

    # ---- control ------------------------------------------------------------

    def partition(self, *sides):
        """Cuts every link between servers of different sides (each side a
        collection of ids); links within a side pass."""
        pairs = set()
        for i, a_side in enumerate(sides):
            for b_side in sides[i + 1:]:
                pairs |= {frozenset((a, b)) for a in a_side for b in b_side}
        self._call(self._set_cut, pairs)

    def isolate(self, sid, others):
        self.partition([sid], [o for o in others if o != sid])

    def cut_pairs(self, pairs):
        """Cuts exactly the links of `pairs` (each two ids), e.g. a bridge:
        two sides that both reach one server but not each other."""
        self._call(self._set_cut, {frozenset(p) for p in pairs})

    def drop_one_way(self, sources, targets):
        """Drops every byte from a server of `sources` to one of `targets`;
        the other direction passes."""
        self._call(self._set_one_way, {(a, b) for a in sources for b in targets if a != b})

    def heal(self):
        self._call(self._set_cut, set())
        self._call(self._set_one_way, set())

    def delay(self, base_ms, jitter_ms=0, loss=0.0, retransmit_ms=200):
        """Every chunk forwarded from now on waits base_ms plus up to
        jitter_ms, and with probability `loss` retransmit_ms more; each
        direction keeps its order."""
        self.delay_ms = (base_ms, jitter_ms)
        self.loss = (loss, retransmit_ms)

    def _delay_s(self):
        base, jitter = self.delay_ms
        wait_ms = base + random.uniform(0, jitter)
        loss, retransmit_ms = self.loss
        if loss and random.random() < loss:
            wait_ms += retransmit_ms
        return wait_ms / 1000.0

    async def _set_one_way(self, pairs):
        healed = self.one_way - pairs
        self.one_way = set(pairs)
        # A link that lost bytes cannot carry frames again. Live links stay
        # up when the cut begins: the deaf side stops hearing mid-stream,
        # as across a real one-way failure.
        for a, b in healed:
            self._abort(self.links, frozenset((a, b)))
            self._abort(self.held, frozenset((a, b)))

    async def _set_cut(self, pairs):
        newly_cut = pairs - self.cut
        healed = self.cut - pairs
        self.cut = set(pairs)
        for pair in newly_cut:
            self.counts["closed_by_cut"] += len(self.links.get(pair, ()))
            self._abort(self.links, pair)
        for pair in healed:
            self._abort(self.held, pair)

    # ---- the links ----------------------------------------------------------

    async def _serve(self, reader, writer, target_port):
        try:
            header = await reader.readexactly(HELLO_HEADER)
            body_len = struct.unpack_from("<H", header, 6)[0]
            if header[:4] != b"CDPR" or header[5] != HELLO_KIND or body_len < HELLO_IDS:
                self.counts["not_hello"] += 1
                writer.transport.abort()
                return
            body = await reader.readexactly(body_len)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.transport.abort()
            return
        dialer, acceptor = struct.unpack_from("<QQ", body, 2)
        pair = frozenset((dialer, acceptor))
        if pair in self.cut:
            self.counts["blackholed"] += 1
            await self._hold(pair, reader, writer)
            return
        if (dialer, acceptor) in self.one_way:
            # The Hello itself is lost: nothing reaches the acceptor.
            self.counts["blackholed"] += 1
            await self._hold(pair, reader, writer)
            return
        self.counts["links"] += 1
        await self._forward(pair, reader, writer, target_port, header + body, self._delay_s,
                            lambda: (dialer, acceptor) not in self.one_way,
                            lambda: (acceptor, dialer) not in self.one_way)


class ClientProxies(_Proxies):
    """A plain TCP proxy in front of each server's client port: a client
    given the proxies' addresses reaches the servers through them, and a
    server can be cut off from its clients while its peers still reach it.
    A cut server's client connections are closed and new ones refused at
    once (as by a firewall that rejects), so that a client moves on to the
    next server of its list without waiting out a connect timeout."""

    def __init__(self):
        super().__init__()
        self.cut = set()  # ids of servers cut off from their clients

    def add(self, sid, listen_port, target_port):
        self._listen(listen_port, lambda r, w: self._serve(sid, r, w, target_port))

    def set_cut(self, ids):
        """Cuts the servers `ids` off from their clients; the others pass."""
        async def apply():
            self.cut = set(ids)
            for sid in self.cut:
                self._abort(self.links, sid)
        self._call(apply)

    async def _serve(self, sid, reader, writer, target_port):
        if sid in self.cut:
            writer.transport.abort()
            return
        await self._forward(sid, reader, writer, target_port)
