"""Wait until an HTTP server answers, or until its container stops.

A TCP connect is not enough: docker-proxy accepts on the published port before anything
listens in the container, then closes. So the probe is one HTTP request, and any status
(200, 302, 403, 404…) means the server is up.
"""

from __future__ import annotations

import http.client
import time
from typing import Callable
from urllib.parse import urlsplit

from dlbox.errors import HostError

PROBE_TIMEOUT = 2.0


def answers(url: str, *, timeout: float = PROBE_TIMEOUT) -> int | None:
    """The HTTP status of one GET of URL (redirects not followed), or None when nothing answers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_http(url: str, *, timeout: float, alive: Callable[[], bool] | None = None,
              interval: float = 0.05, alive_every: float = 1.0,
              on_exit: Callable[[], str] | None = None) -> float:
    """Poll URL until it answers; return the seconds waited.

    `alive()` is asked about once every `alive_every` seconds (it costs a docker call): when it
    says False, raise HostError with `on_exit()` (the container's last log lines) appended."""
    t0 = time.monotonic()
    next_alive = t0 + alive_every
    while True:
        if answers(url) is not None:
            return time.monotonic() - t0
        now = time.monotonic()
        if alive is not None and now >= next_alive:
            next_alive = now + alive_every
            if not alive():
                tail = on_exit() if on_exit else ""
                raise HostError("the container stopped before its server answered" +
                                (f"; its last lines:\n{tail}" if tail else ""),
                                fix="fix the error above, then start it again")
        if now - t0 > timeout:
            raise HostError(f"nothing answered on {url.split('?')[0]} within {timeout:.0f} s",
                            fix="see `dlbox logs` for what the server is doing")
        time.sleep(interval)
