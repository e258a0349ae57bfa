"""The stream load (ship/send.stream_load, remote.stream_load_script, deploy.stream_end) and the
client's cheaper byte path (Spans sent with sendfile, --fast levels), without an engine."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from dlbox.errors import HostError
from dlbox.ship import codec
from dlbox.ship.deploy import STREAM_ABOVE, stream_end
from dlbox.ship.layers import ImageFacts, Span
from dlbox.ship.load import LoadFailed, manifest_tar, stream_outcome
from dlbox.ship.progress import Meter
from dlbox.ship.remote import RemoteState, stream_load_script
from dlbox.ship.send import ConnectionLost, raw_from, stream_layout, stream_members

A, B, C = ("sha256:" + c * 64 for c in "abc")


class FakeSource:
    def __init__(self, data: dict[str, bytes]):
        self.data = data

    def size(self, diff_id: str) -> int:
        return len(self.data[diff_id])

    def stream(self, diff_id: str, spans: bool = False):
        d = self.data[diff_id]
        return iter([d[:100], d[100:]])


def test_the_stream_is_a_docker_save_tar_and_its_layout_says_where_each_layer_is():
    data = {A: os.urandom(1000), B: os.urandom(512)}
    image = ImageFacts("x:1", "sha256:" + "f" * 64, (A, B), ("x:1",), 0)
    trailer = manifest_tar(image, b'{"rootfs": {}}', ["x:1"], suffix=".tar.part")
    stream = b"".join(stream_members(FakeSource(data), [A, B], trailer, Meter()))
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        assert tar.extractfile("a" * 64 + ".tar.part").read() == data[A]
        assert tar.extractfile("b" * 64 + ".tar.part").read() == data[B]
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest[0]["Layers"] == ["a" * 64 + ".tar.part", "b" * 64 + ".tar.part"]
    for hex_id, offset, size in stream_layout([(A, 1000), (B, 512)]):   # what the server cuts on a drop
        assert stream[offset:offset + size] == data["sha256:" + hex_id]


def test_the_stream_script_loads_while_it_arrives_and_keeps_the_compressed_copy():
    members = stream_layout([(A, 1000)])
    script = stream_load_script("e" * 64, members, compressed=True)
    assert 'tee "$S.zst" 2>"$E" | zstd -dc | "$DK" load' in script, "a copy of the bytes as they crossed"
    assert "openssl" not in script and "$HS" not in script, "docker load checks the diff IDs itself"
    assert 'tail -c +513 "$S" | head -c 1000 > "$D/' + "a" * 64 + '.tar.part"' in script
    assert script.index('zstd -dcq "$S.zst" > "$S"') < script.index("tail -c"), "cut from the decompressed copy"
    assert "deploy-partial" not in script, "a partial image's stream tidies nothing"
    assert 'rm -f "$S" "$S.zst"' in script and '"$D/manifest.json"' not in script
    plain = stream_load_script("e" * 64, members, compressed=False, final_image="sha256:" + "e" * 64)
    assert 'tee "$S" 2>"$E" | "$DK" load' in plain and "zstd" not in plain
    assert "deploy-partial=sha256:" + "e" * 64 in plain, "the last load removes the partial images"


def _state(staged: dict[str, int] | None = None) -> RemoteState:
    return RemoteState("ok", "", {}, staged or {})


class Sizes:
    def __init__(self, sizes):
        self.sizes = sizes

    def size(self, d):
        return self.sizes[d]


def test_the_stream_takes_the_first_missing_layers_up_to_the_biggest():
    image = ImageFacts("x:1", "sha256:" + "f" * 64, (A, B, C), (), 0)
    big = Sizes({A: 10, B: STREAM_ABOVE, C: 5 << 20})
    assert stream_end(image, 0, [A, B, C], big, _state()) == 2, "A and B; C is staged while B loads"
    assert stream_end(image, 1, [B, C], big, _state()) == 2
    assert stream_end(image, 0, [A, B, C], Sizes({A: 10, B: 1 << 20, C: 5}), _state()) == 0, "small: staged"
    assert stream_end(image, 0, [A, B, C], big, _state({"b" * 64 + ".tar.part": 7})) == 0, "a part resumes"
    again = ImageFacts("x:1", "sha256:" + "f" * 64, (A, B, A), (), 0)
    assert stream_end(again, 0, [A, B], big, _state()) == 0, "a later load needs A's staged file"
    assert stream_end(image, 3, [], big, _state()) == 3


def test_what_a_stream_load_said():
    assert stream_outcome("h", 0, b"DLBOX:ok\n", 1) == "ok"
    assert stream_outcome("h", 74, b"DLBOX:badbytes\ninvalid diffID for layer 2", 1) == "badbytes"
    assert stream_outcome("h", 76, b"DLBOX:load-failed\narchive/tar: invalid tar header", 1) == "badbytes"
    with pytest.raises(LoadFailed):
        stream_outcome("h", 76, b"DLBOX:load-failed\nwrite /var/lib/docker/x: no space left on device", 1)
    with pytest.raises(HostError, match="ran out of disk space in its staging directory"):
        stream_outcome("h", 71, b"DLBOX:write-failed tee: No space left on device", 1)
    with pytest.raises(ConnectionLost, match="resumes"):
        stream_outcome("h", 255, b"", 1)
    with pytest.raises(ConnectionLost):
        stream_outcome("h", -9, b"DLBOX:ok", 1), "killed: the ok line is not this run's"


def test_a_span_goes_to_a_pipe_by_sendfile_and_resumes_mid_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 40)
    span = Span(path, 0, 10240)
    r, w = os.pipe()
    span.skip(10000).send_to(w)
    os.close(w)
    assert os.read(r, 1 << 16) == path.read_bytes()[10000:]
    chunks = [b"x" * 100, span, b"y" * 10]
    rest = list(raw_from(iter(chunks), 150))
    assert isinstance(rest[0], Span) and rest[0].start == 50 and rest[0].length == 10190
    with pytest.raises(OSError, match="shorter"):
        Span(path, 0, 20000).send_to(os.open(os.devnull, os.O_WRONLY))


def test_a_sample_from_the_middle_reads_no_span_it_skips(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a" * 1000 + b"b" * 1000)
    missing = Span(Path(tmp_path / "absent"), 0, 5000)     # skipped whole: never opened
    assert codec.take(iter([missing, Span(path, 0, 2000)]), 10, skip=5995) == b"a" * 5 + b"b" * 5


def test_faster_levels_win_ties_and_are_never_measured_slower_than_stronger_ones():
    assert codec.zstd_argv(-3)[3] == "--fast=3" and codec.level_name(-3) == "zstd --fast=3"
    # a busy machine measured --fast=3 no faster than -1: both CPU-bound, a tie, the cheaper wins
    noisy = {-3: (226e6, 0.35), 1: (238e6, 0.27), 3: (120e6, 0.23)}
    assert codec.choose(117e6, noisy).name == "zstd --fast=3"
    assert codec.choose(11.7e6, noisy).name == "zstd -3", "100 Mbit/s: the wire still decides"
    assert codec.choose(1.17e9, noisy).name == "none"


def test_stronger_levels_are_measured_only_where_the_wire_may_be_the_slower_stage(monkeypatch):
    asked: list[int] = []

    def level(sample, lv):
        asked.append(lv)
        return {-3: (300e6, 0.35), 1: (200e6, 0.27), 3: (90e6, 0.23), 6: (20e6, 0.21)}[lv]

    monkeypatch.setattr(codec, "measure_level", level)
    monkeypatch.setattr(codec, "zstd_binary", lambda: "/usr/bin/zstd")
    monkeypatch.delenv("DLBOX_SHIP_CODEC", raising=False)
    source = FakeSource({A: os.urandom(1000) * 100_000})
    remote = RemoteState("ok", "", {}, {}, ("zstd",))
    for link, levels, name in ((117e6, [-3, 1], "zstd --fast=3"), (11.7e6, [-3, 1, 3], "zstd -3"),
                               (2e6, [-3, 1, 3, 6], "zstd -6")):
        asked.clear()
        monkeypatch.setattr(codec, "measure_link", lambda _t, _c, link=link: link)
        assert codec.choose_for_deploy(None, "", source, [A], remote, lambda _m: None).name == name
        assert asked == levels
