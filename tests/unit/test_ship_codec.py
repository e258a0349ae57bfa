"""The deploy's wire codec: the choice model, the real zstd pipe, and the server-side script."""

import os
import shutil
import subprocess

import pytest

from dlbox.ship import codec
from dlbox.ship.remote import parse_probe, send_script
from dlbox.ship.send import raw_from


def test_slow_link_compresses_hard_fast_link_lightly_very_fast_link_not_at_all():
    measured = {1: (300e6, 0.35), 3: (60e6, 0.31), 6: (15e6, 0.28)}
    assert codec.choose(12.5e6, measured).name == "zstd -3"      # 100 Mbit/s: the wire decides
    assert codec.choose(125e6, measured).name == "zstd -1"       # 1 Gbit/s: the CPU decides
    assert codec.choose(125e6, {1: (130e6, 0.35)}).name == "none", "a CPU no faster than the link gains < 5 %"
    assert codec.choose(1.25e9, measured).name == "none"         # 10 Gbit/s: compressing only slows it
    assert codec.choose(12.5e6, {1: (130e6, 0.99)}).name == "none", "incompressible data is sent as is"


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_compressed_stream_round_trips_and_reports_raw_progress():
    data = [os.urandom(1000) + b"\0" * 300_000 for _ in range(5)]
    seen = []
    wire = b"".join(codec.compressed(iter(data), 3, on_raw=seen.append))
    assert sum(seen) == sum(map(len, data)) and len(wire) < sum(seen) / 10
    out = subprocess.run(["zstd", "-dc"], input=wire, capture_output=True, check=True).stdout
    assert out == b"".join(data)


def test_resume_yields_only_the_rest():
    chunks = [b"a" * 10, b"b" * 10, b"c" * 10]
    assert b"".join(raw_from(iter(chunks), 15)) == b"b" * 5 + b"c" * 10
    assert b"".join(raw_from(iter(chunks), 0)) == b"".join(chunks)


def test_probe_reports_the_servers_zstd_and_the_send_script_decompresses():
    state = parse_probe("DLBOX:docker ok\nDLBOX:codecs zstd\nDLBOX:staged\n")
    assert state.codecs == ("zstd",) and parse_probe("DLBOX:docker ok\nDLBOX:codecs \n").codecs == ()
    script = send_script("ab" * 32, 100, compressed=True)
    assert '{ zstd -dc >> "$P"; }' in script and "No space" in script
    assert '{ cat >> "$P"; }' in send_script("ab" * 32, 100)
    fresh = send_script("ab" * 32, 100, compressed=True, fresh=True)
    assert '{ zstd -dc | tee "$P" | $HS > "$H"; }' in fresh, "hashed on arrival, not read again; a fresh send starts the file"
