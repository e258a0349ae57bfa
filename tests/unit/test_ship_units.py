"""ship: argv, parsing and decisions, without an engine or a server."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import datetime, timezone

import pytest

from dlbox import ssh
from dlbox.errors import DlboxError, HostError
from dlbox.ship.archive import ZSTD_MAGIC, ArchiveError, compress_argv, verify
from dlbox.ship.deploy import tags_for
from dlbox.ship.load import manifest_tar
from dlbox.ship.remote import parse_probe, probe_script, send_script, staging_dir
from dlbox.ship.layers import ImageFacts, chain_ids, present_prefix
from dlbox.ship.push import registry_notes, remote_ref
from dlbox.ship.snapshot import commit_argv, default_tag, snapshot_labels

A, B, C, D = (f"sha256:{c * 64}" for c in "abcd")


@pytest.mark.parametrize("text,host,user,port", [
    ("root@10.0.0.2", "10.0.0.2", "root", None),
    ("me@gpu.example.org:2222", "gpu.example.org", "me", 2222),
    ("gpu-box", "gpu-box", None, None),
    ("ssh://u@h:22", "h", "u", 22),
    ("u@[::1]:2200", "::1", "u", 2200),
])
def test_target_parse(text, host, user, port):
    t = ssh.Target.parse(text)
    assert (t.host, t.user, t.port) == (host, user, port)


@pytest.mark.parametrize("bad", ["", "a b", "u@h:99999", "u@h:x"])
def test_target_parse_rejects(bad):
    with pytest.raises(HostError):
        ssh.Target.parse(bad)


def test_ssh_argv_batch_timeout_config_port(monkeypatch):
    monkeypatch.setenv("DLBOX_SSH_CONFIG", "/cfg")
    argv = ssh.ssh_argv(ssh.Target.parse("u@h:2200"), "true", control_path="/tmp/cp")
    assert argv[1:3] == ["-F", "/cfg"]
    assert "BatchMode=yes" in argv and f"ConnectTimeout={ssh.CONNECT_TIMEOUT}" in argv
    assert "ControlPath=/tmp/cp" in argv
    assert argv[-5:] == ["-p", "2200", "--", "u@h", "true"]


@pytest.mark.parametrize("config,want", [
    ("", "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,"),
    ("Ciphers aes256-ctr,aes128-gcm@openssh.com\n", "aes128-gcm@openssh.com,aes256-ctr"),
    ("Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com\n", None),   # already first: as is
    ("Ciphers chacha20-poly1305@openssh.com\n", None),                           # no AES allowed: as is
])
def test_deploy_connections_put_aes_gcm_first_among_the_ciphers_the_config_allows(monkeypatch, tmp_path,
                                                                                   config, want):
    if not ssh.shutil.which("ssh"):
        pytest.skip("no ssh client")
    (tmp_path / "cfg").write_text(config)
    monkeypatch.setenv("DLBOX_SSH_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.setattr(ssh, "_cpu_has_aes", lambda: True)
    monkeypatch.setattr(ssh, "_BULK", {})
    opts = ssh.bulk_ciphers(ssh.Target.parse("u@h"))
    assert (opts[1][len("Ciphers="):].startswith(want) if want else opts == []), opts
    plain = ssh.ssh_argv(ssh.Target.parse("u@h"), "true")
    assert not any(o.startswith("Ciphers=") for o in plain), "only a deploy's shared connection"
    monkeypatch.setattr(ssh, "_cpu_has_aes", lambda: False)
    monkeypatch.setattr(ssh, "_BULK", {})
    assert ssh.bulk_ciphers(ssh.Target.parse("u@h")) == []


def test_ssh_argv_plain_without_config(monkeypatch):
    monkeypatch.delenv("DLBOX_SSH_CONFIG", raising=False)
    argv = ssh.ssh_argv(ssh.Target.parse("h"), "true")
    assert "-F" not in argv and "ControlMaster=auto" not in argv and argv[-2:] == ["h", "true"]


def test_docker_host_of_target():
    assert ssh.Target.parse("u@h:2200").docker_host == "ssh://u@h:2200"
    assert ssh.Target.parse("h").docker_host == "ssh://h"


def test_ssh_failure_explained():
    t = ssh.Target.parse("u@h")
    e = ssh.explain_failure(t, 255, "ssh: connect to host h port 22: Connection refused\n")
    assert "Cannot reach u@h over SSH: ssh: connect to host h port 22: Connection refused" in e.message
    assert "Permission denied" not in e.fix
    assert "ssh-agent" in ssh.explain_failure(t, 255, "u@h: Permission denied (publickey).").fix
    assert ssh.explain_failure(t, 1, "whatever") is None


def test_chain_ids_follow_the_image_spec():
    ids = chain_ids([A, B])
    assert ids[0] == A
    assert ids[1] == "sha256:" + hashlib.sha256(f"{A} {B}".encode()).hexdigest()


def test_present_prefix_needs_the_same_stack():
    assert present_prefix((A, B, C), [[A, B, D], [A]]) == 2
    assert present_prefix((A, B, C), [[B, C]]) == 0  # same layers on another parent do not count
    assert present_prefix((A, B), []) == 0


def test_parse_probe():
    out = "\n".join(["DLBOX:docker ok", f'{A} ["{B}","{C}"]', f"{D} null", "DLBOX:staged",
                     f"100 {'c' * 64}.tar.part", f"5 {'d' * 64}.tar"])
    st = parse_probe(out)
    assert st.docker == "ok" and st.images == {A: [B, C], D: []}
    assert st.staged == {f"{'c' * 64}.tar.part": 100, f"{'d' * 64}.tar": 5}
    assert parse_probe("DLBOX:docker missing").docker == "missing"
    down = parse_probe("DLBOX:docker down\nCannot connect to the Docker daemon at unix:///x")
    assert down.docker == "down" and "Cannot connect" in down.detail


def test_staging_dir_quoted(monkeypatch):
    monkeypatch.delenv("DLBOX_REMOTE_STAGING", raising=False)
    assert staging_dir() == '"$HOME/.cache/dlbox/incoming"'
    monkeypatch.setenv("DLBOX_REMOTE_STAGING", "/srv/my dir")
    assert staging_dir() == "'/srv/my dir'"
    assert "'/srv/my dir'" in probe_script()


def test_send_script_appends_verifies_renames():
    s = send_script("ab" * 32, 1234)
    assert '{ cat >> "$P"; }' in s and "-lt 1234" in s and f'mv -f "$P" "$D/{"ab" * 32}.tar"' in s
    assert "rm -f \"$P\"" in s  # wrong hash / too long: the bad file goes


def test_manifest_tar_is_docker_save_layout():
    image = ImageFacts("x:1", A, (B, C), ("x:1",), 10)
    config = b'{"rootfs":{}}'
    with tarfile.open(fileobj=io.BytesIO(manifest_tar(image, config, ["x:1"]))) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert tar.extractfile("a" * 64 + ".json").read() == config
    assert manifest == [{"Config": "a" * 64 + ".json", "RepoTags": ["x:1"],
                         "Layers": ["b" * 64 + ".tar", "c" * 64 + ".tar"]}]


def test_tags_for():
    image = ImageFacts("x", A, (), ("x:latest", "y:2"), 0)
    assert tags_for(image, "x") == ["x:latest"]
    assert tags_for(image, "y:2") == ["y:2"]
    assert tags_for(image, A) == ["x:latest"]


@pytest.mark.parametrize("ref,registry,want", [
    ("dlbox/digits:baked", "127.0.0.1:5000", "127.0.0.1:5000/dlbox/digits:baked"),
    ("dlbox/digits:baked", "reg.example.org/team/", "reg.example.org/team/dlbox/digits:baked"),
    ("old.example.org:5000/a/b:1", "127.0.0.1:5000", "127.0.0.1:5000/a/b:1"),
])
def test_remote_ref(ref, registry, want):
    assert remote_ref(ref, registry) == want


def test_remote_ref_rejects_blank():
    with pytest.raises(DlboxError):
        remote_ref("a:1", " ")


def test_registry_notes_mirrors_and_loopback():
    info = {"RegistryConfig": {"Mirrors": ["https://mirror.example/"], "IndexConfigs": {}}}
    notes = registry_notes(info, "127.0.0.1:5000/x")
    assert any("mirror.example" in n for n in notes) and any("plain HTTP" in n for n in notes)


def test_snapshot_argv_and_labels():
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    labels = snapshot_labels("c1", {"Id": "cid", "Image": "sha256:img", "Config": {"Image": "dlbox/p:abc"}}, now)
    assert labels["org.dlbox.snapshot.image"] == "dlbox/p:abc"
    assert labels["org.dlbox.snapshot.created"] == "2025-01-02T03:04:05Z"
    argv = commit_argv("c1", "dlbox/p:snap", labels, "msg")
    assert argv[:3] == ["commit", "--message", "msg"] and argv[-2:] == ["c1", "dlbox/p:snap"]
    assert 'LABEL org.dlbox.snapshot.container="c1"' in argv
    assert default_tag("p", now) == "dlbox/p:snapshot-20250102-030405"


def test_compress_argv_uses_all_cores():
    assert compress_argv()[1:3] == ["-T0", "-3"]


def _archive(tmp_path, data: bytes, digest: str | None = None):
    f = tmp_path / "a.tar.zst"
    f.write_bytes(data)
    (tmp_path / "a.tar.zst.sha256").write_text(f"{digest or hashlib.sha256(data).hexdigest()}  a.tar.zst\n")
    return f


def test_verify_accepts_matching(tmp_path):
    data = ZSTD_MAGIC + b"x" * 100
    assert verify(_archive(tmp_path, data)) == hashlib.sha256(data).hexdigest()


def test_verify_refuses_truncated_and_wrong(tmp_path):
    data = ZSTD_MAGIC + b"x" * 100
    f = _archive(tmp_path, data[:50], digest=hashlib.sha256(data).hexdigest())
    with pytest.raises(ArchiveError, match="damaged or truncated"):
        verify(f)
    f = _archive(tmp_path, b"PK\x03\x04 not zstd")
    with pytest.raises(ArchiveError, match="not a zstd archive"):
        verify(f)
    (tmp_path / "a.tar.zst.sha256").unlink()
    with pytest.raises(ArchiveError, match="no checksum file"):
        verify(f)
