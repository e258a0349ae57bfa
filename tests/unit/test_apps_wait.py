"""The readiness probe: any HTTP answer counts; a stopped container ends the wait with its logs."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from dlbox.apps.wait import answers, wait_http
from dlbox.errors import HostError
from tests.helpers.net import free_port


class Forbidden(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(403)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = HTTPServer(("127.0.0.1", 0), Forbidden)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/api"
    srv.shutdown()
    srv.server_close()




def test_any_status_is_an_answer(server):
    assert answers(server) == 403
    assert wait_http(server, timeout=5) < 5


def test_nothing_listening():
    assert answers(f"http://127.0.0.1:{free_port()}/", timeout=0.5) is None


def test_a_stopped_container_ends_the_wait_with_its_last_lines():
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(HostError, match="stopped before") as exc:
        wait_http(url, timeout=30, alive=lambda: False, alive_every=0.0, on_exit=lambda: "    boom")
    assert "boom" in exc.value.message


def test_timeout_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/x?token=secret"
    with pytest.raises(HostError, match="within") as exc:
        wait_http(url, timeout=0.2, alive=lambda: True)
    assert "secret" not in exc.value.message
