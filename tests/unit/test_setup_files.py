"""Merging, diffs, backups and atomic writes of config files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dlbox.host.config_files import MalformedConfig, parse_json_object
from dlbox.redact import mask_secrets
from dlbox.setup.files import FileChange, apply, set_apt_option, set_ini_option, set_systemd_env, sudo_argv


def test_mask_secrets_hides_proxy_passwords_and_registry_auth():
    text = 'http://ada:s3cret@proxy:3128 and "auth": "YWRhOnRva2Vu"'
    masked = mask_secrets(text)
    assert "s3cret" not in masked and "YWRh" not in masked
    assert "http://ada:***@proxy:3128" in masked


def test_parse_json_reports_line_and_column():
    with pytest.raises(MalformedConfig) as e:
        parse_json_object('{\n  "a": 1,\n}\n', "/etc/docker/daemon.json")
    assert (e.value.line, e.value.column) == (3, 1) and "line 3, column 1" in e.value.message


def test_apt_option_keeps_comments_and_replaces_in_place():
    text = '// office\nAcquire::http::Proxy "http://old:1";\nAPT::Get::Assume-Yes "true";\n'
    new = set_apt_option(text, "Acquire::http::Proxy", "http://new:2")
    assert new == '// office\nAcquire::http::Proxy "http://new:2";\nAPT::Get::Assume-Yes "true";\n'
    assert set_apt_option(new, "Acquire::http::Proxy", "http://new:2") == new


def test_ini_option_adds_section_or_key_and_keeps_comments():
    assert set_ini_option("", "global", "index-url", "X") == "[global]\nindex-url = X\n"
    text = "# mine\n[global]\ntimeout = 60\n\n[install]\nuser = true\n"
    new = set_ini_option(text, "global", "index-url", "X")
    assert new == "# mine\n[global]\ntimeout = 60\nindex-url = X\n\n[install]\nuser = true\n"
    assert set_ini_option(new, "global", "index-url", "X") == new


def test_systemd_env_replaces_only_its_variables():
    text = '[Service]\nEnvironment="HTTP_PROXY=http://old:1"\nLimitNOFILE=1024\n'
    new = set_systemd_env(text, {"HTTP_PROXY": "http://p:3", "NO_PROXY": "localhost"})
    assert 'Environment="HTTP_PROXY=http://p:3"' in new and "LimitNOFILE=1024" in new
    assert 'Environment="NO_PROXY=localhost"' in new and "old" not in new


def test_apply_backs_up_keeps_mode_and_replaces_atomically(tmp_path: Path):
    f = tmp_path / "daemon.json"
    f.write_text('{"a": 1}')
    os.chmod(f, 0o640)
    backup = apply(FileChange("/etc/docker/daemon.json", f, '{"a": 1}', '{"a": 2}\n'), now=0)
    assert f.read_text() == '{"a": 2}\n' and oct(f.stat().st_mode & 0o777) == "0o640"
    assert backup.read_text() == '{"a": 1}' and re.search(r"\.dlbox-bak-\d{8}-\d{6}$", backup.name)
    assert not list(tmp_path.glob("*.dlbox-tmp"))


def test_apply_refuses_when_file_changed_since_diff(tmp_path: Path):
    f = tmp_path / "x"
    f.write_text("edited meanwhile")
    from dlbox.errors import HostError

    with pytest.raises(HostError):
        apply(FileChange("/x", f, "original", "new"))
    assert f.read_text() == "edited meanwhile"


def test_diff_masks_passwords():
    ch = FileChange("/etc/apt/apt.conf.d/95dlbox-proxy", Path("/nonexistent"), None,
                    'Acquire::http::Proxy "http://u:pw@h:1";\n')
    assert "pw@" not in ch.diff() and "--- /dev/null" in ch.diff()


def test_sudo_argv_backs_up_then_renames_next_to_the_file():
    cmds = sudo_argv(Path("/etc/docker/daemon.json"), "/tmp/t", 0o644, Path("/etc/docker/daemon.json.dlbox-bak-1"))
    assert cmds[1] == ["sudo", "cp", "-p", "--no-clobber", "/etc/docker/daemon.json", "/etc/docker/daemon.json.dlbox-bak-1"]
    assert cmds[-1] == ["sudo", "mv", "-f", "/etc/docker/daemon.json.dlbox-tmp", "/etc/docker/daemon.json"]


def test_backups_in_one_second_never_replace_each_other(tmp_path):
    f = tmp_path / "daemon.json"
    f.write_text('{"a": 1}')
    first = apply(FileChange("/etc/docker/daemon.json", f, '{"a": 1}', '{"a": 2}'), now=0)
    second = apply(FileChange("/etc/docker/daemon.json", f, '{"a": 2}', '{"a": 3}'), now=0)
    assert first != second and first.read_text() == '{"a": 1}' and second.read_text() == '{"a": 2}'


def test_a_symlinked_file_is_written_through_its_link(tmp_path):
    real = tmp_path / "conf" / "daemon.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    apply(FileChange(str(link), link, "{}", '{"b": 1}\n'))
    assert link.is_symlink() and real.read_text() == '{"b": 1}\n'
