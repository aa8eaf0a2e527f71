#!/usr/bin/env python3
"""A tiny web service to try coord-sidecar with.

    python3 web.py PORT [BIND-ADDRESS]    (default 0.0.0.0: every interface)

Serves "hello from PORT" on every path and /health with 200, until the file
/tmp/web-PORT.down exists: then /health answers 503 and the sidecar beside
it removes the instance from discovery (touch the file to take it out,
remove it to bring it back).
"""

import http.server
import os
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
BIND = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
DOWN_FILE = "/tmp/web-%d.down" % PORT


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            healthy = not os.path.exists(DOWN_FILE)
            body = b"ok\n" if healthy else b"going away\n"
            self.send_response(200 if healthy else 503)
        else:
            body = ("hello from %d\n" % PORT).encode()
            self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


http.server.ThreadingHTTPServer((BIND, PORT), Handler).serve_forever()
