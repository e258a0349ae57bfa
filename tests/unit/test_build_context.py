"""What `build --bake` may send: .gitignore, .dockerignore, never secrets, and what it says."""

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from dlbox.engine.context import WARN_BYTES, secret_reason, select_context


def project(root: Path, git: bool) -> Path:
    files = {
        "train.py": "print('hi')\n", "pkg/model.py": "x = 1\n", "data/big.bin": "0" * 100, "run.log": "log\n",
        ".env": "HF_TOKEN=hf_secret\n", ".env.example": "HF_TOKEN=\n", "keys/deploy": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n",
        "id_rsa.pub": "ssh-rsa AAAA\n", ".aws/credentials": "[default]\n", "certs/server.pem": "x\n",
        ".gitignore": "*.log\nwandb/\n", ".dockerignore": "data/\n!data/keep.txt\n# comment\n", "data/keep.txt": "k\n",
        "wandb/run-1/files.txt": "w\n", ".venv/bin/python": "", "pkg/__pycache__/m.cpython-311.pyc": "",
    }
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.mark.parametrize("git", [True, False])
def test_ignore_files_and_secrets(tmp_path, git):
    c = select_context(project(tmp_path, git))
    assert c.files == (".dockerignore", ".env.example", ".gitignore", "data/keep.txt", "id_rsa.pub",
                       "pkg/model.py", "train.py")
    assert dict(c.secrets) == {".env": "matches .env", "keys/deploy": "a PEM private key",
                               ".aws/credentials": "inside .aws/ (credentials)", "certs/server.pem": "matches *.pem"}
    text = c.summary()
    assert text.startswith("sent 7 files") and ".env" in text and "keys/deploy" in text
    assert "hf_secret" not in text


def test_tar_holds_exactly_the_files(tmp_path):
    c = select_context(project(tmp_path, True))
    buf = BytesIO()
    c.write_tar(buf, {".dlbox/Dockerfile.bake": b"FROM x\n"})
    names = tarfile.open(fileobj=BytesIO(buf.getvalue())).getnames()
    assert names == [".dlbox/Dockerfile.bake", *c.files]
    assert buf.getvalue()[156:157] == b"0"          # a plain first header: docker sees a tar, not a Dockerfile


def test_size_warning_names_the_biggest(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"")
    with open(tmp_path / "ckpt.pt", "r+b") as f:
        f.truncate(WARN_BYTES + 1)                  # sparse: no real disk used
    (tmp_path / "a.py").write_text("")
    c = select_context(tmp_path)
    assert c.too_big and "ckpt.pt" in c.warnings()[0] and ".dockerignore" in c.warnings()[0]


@pytest.mark.parametrize("rel, secret", [
    (".env.production", True), ("config/.env", True), (".env.sample", False), ("id_ed25519", True),
    ("id_ed25519.pub", False), (".ssh/known_hosts", True), ("client_secret_123.json", True),
    (".netrc", True), (".pypirc", True), (".git-credentials", True), ("README.md", False), ("model.key", True),
])
def test_secret_names(tmp_path, rel, secret):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_text("x")
    assert bool(secret_reason(tmp_path, rel)) is secret
