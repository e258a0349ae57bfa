"""A small real HTTP proxy for tests: CONNECT tunnels and absolute-URI forwarding, with Basic
auth, counting what went through it. Like a desktop proxy client on the host's loopback."""

from __future__ import annotations

import base64
import http.server
import select
import socket
import socketserver
import threading
import urllib.request


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "AuthProxy"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _authorised(self) -> bool:
        if self.headers.get("Proxy-Authorization", "") == self.server.expected:
            return True
        self.server.refused += 1
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_CONNECT(self) -> None:
        if not self._authorised():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            self.send_error(502)
            return
        self.server.tunnels.append(self.path)
        self.send_response(200, "Connection established")
        self.end_headers()
        conns = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(conns, [], [], 60)
                if not ready:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()

    def do_GET(self) -> None:
        if not self._authorised():
            return
        self.server.forwarded.append(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "proxy-connection")}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.path, headers=headers), timeout=60) as r:
                body = r.read()
                self.send_response(r.status)
                for k, v in r.headers.items():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
        except urllib.error.HTTPError as e:
            self.send_response(e.code)
            self.send_header("Content-Length", "0")
            self.end_headers()


class AuthProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, user: str, password: str, bind: str = "127.0.0.1") -> None:
        super().__init__((bind, 0), _Handler)
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.tunnels: list[str] = []
        self.forwarded: list[str] = []
        self.refused = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> "AuthProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    @property
    def port(self) -> int:
        return self.server_address[1]
