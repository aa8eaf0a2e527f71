"""A coordd cluster whose every peer link and client link goes through a
proxy of peer_proxy.py, for the faults harness and its tests."""

import json

from coordd_harness import CoorddCluster
from peer_proxy import ClientProxies, PeerProxies


class ProxiedCluster(CoorddCluster):
    """A CoorddCluster whose membership names a proxy for each server: every
    server listens for its peers on a port of its own (--peer-port) and
    reaches the others through their proxies."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.proxies = PeerProxies()
        self.clients = ClientProxies()
        self.proxy_ports = {}
        self.client_proxy_ports = {}
        self.fault_args = {}  # per server: flags a nemesis adds

    def _choose_ports(self, extra=0):
        ports = super()._choose_ports(2 * len(self.ids) + extra)
        for i, sid in enumerate(self.ids):
            self.proxy_ports[sid] = ports[2 * i]
            self.proxies.add(ports[2 * i], self.peer_ports[sid])
            self.client_proxy_ports[sid] = ports[2 * i + 1]
            self.clients.add(sid, ports[2 * i + 1], self.client_ports[sid])
        return ports[2 * len(self.ids):]

    def proxied_hosts(self, ids=None):
        """A connection string naming the servers' client proxies."""
        return ",".join("127.0.0.1:%d" % self.client_proxy_ports[sid] for sid in ids or self.ids)

    def peer_entry(self, sid):
        return "%d=127.0.0.1:%d" % (sid, self.proxy_ports[sid])

    def _make(self, sid):
        self.args_of[sid] = (["--peer-port", str(self.peer_ports[sid])] +
                             list(self.fault_args.get(sid, ())))
        return super()._make(sid)

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            self.proxies.close()
            self.clients.close()

    def member_body(self, sid, role="participant"):
        """The admin API's JSON for adding server sid, named by its proxy."""
        return json.dumps({"id": sid, "peer_address": "127.0.0.1:%d" % self.proxy_ports[sid],
                           "client_address": "127.0.0.1:%d" % self.client_ports[sid],
                           "role": role})
