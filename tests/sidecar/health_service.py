"""A tiny HTTP service whose health the test controls, for coord-sidecar's checks.

    health_service.py PORT_FILE FLAG_FILE

Listens on 127.0.0.1 at a free port and writes the port to PORT_FILE.
GET /health answers 200 while FLAG_FILE exists and 503 otherwise; any other
path answers 200 "hello". Runs until killed.
"""

import http.server
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    flag_file = None

    def do_GET(self):
        if self.path == "/health":
            ok = os.path.exists(self.flag_file)
            body = b"ok\n" if ok else b"failing\n"
            self.send_response(200 if ok else 503)
        else:
            body = b"hello\n"
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    port_file, Handler.flag_file = sys.argv[1], sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
