"""`python tests/helpers/drop_link.py N dlbox-args…`: run dlbox with a link that drops after N bytes.

The fault is injected around `dlbox.ssh.popen`, so the deploy code under test is the shipped
code: once N bytes have gone to the server in total, the ssh process is killed (the remote
`cat` sees EOF and keeps what arrived) and the next write fails like a dropped connection.
"""

from __future__ import annotations

import sys
import time

from dlbox import cli, ssh


class _DroppingPipe:
    sent = 0  # across every ssh process of this run, like a byte budget on the link

    def __init__(self, proc, limit: int) -> None:
        self._proc, self._pipe, self._limit = proc, proc.stdin, limit

    def write(self, data: bytes) -> int:
        room = self._limit - _DroppingPipe.sent
        if len(data) <= room:
            _DroppingPipe.sent += len(data)
            return self._pipe.write(data)
        self._pipe.write(data[:max(0, room)])
        self._pipe.flush()
        _DroppingPipe.sent = self._limit
        time.sleep(0.2)  # let those bytes reach the server before the link drops
        self._proc.kill()
        raise BrokenPipeError("link dropped (tests/helpers/drop_link.py)")

    def __getattr__(self, name):
        return getattr(self._pipe, name)


def main() -> None:
    limit = int(sys.argv[1])
    real_popen = ssh.popen

    def popen(*args, **kw):
        proc = real_popen(*args, **kw)
        if proc.stdin is not None:
            proc.stdin = _DroppingPipe(proc, limit)
        return proc

    ssh.popen = popen
    sys.argv = ["dlbox", *sys.argv[2:]]
    cli.main()


if __name__ == "__main__":
    main()
