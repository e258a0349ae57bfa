"""One CA bundle for builds (a BuildKit secret) and containers (a read-only mount).

Only certificates pass: a file holding a private key is refused, so key material can never
reach a build or a container.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from dlbox.engine.paths import cache_dir
from dlbox.errors import HostError

CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
FULL_BUNDLE_MIN = 20   # fewer certificates than this: an extra CA, to be added to the system set


def combined_bundle(files: tuple[str, ...]) -> Path | None:
    """Concatenate the certificates of FILES (plus the system bundle when they are only a few
    extra CAs) into a content-addressed file in dlbox's cache. None when FILES is empty."""
    if not files:
        return None
    certs: list[bytes] = []
    for f in files:
        try:
            data = Path(f).read_bytes()
        except OSError as exc:
            raise HostError(f"[net] ca_certs: cannot read {f}: {exc.strerror}") from None
        if b"PRIVATE KEY" in data:
            raise HostError(f"[net] ca_certs: {f} contains a private key; give only certificates (a .crt/.pem bundle)")
        found = CERT.findall(data)
        if not found:
            raise HostError(f"[net] ca_certs: {f} holds no PEM certificate")
        certs += found
    if len(certs) < FULL_BUNDLE_MIN:
        for system in SYSTEM_BUNDLES:
            if os.path.isfile(system):
                certs = CERT.findall(Path(system).read_bytes()) + certs
                break
    body = b"\n".join(dict.fromkeys(certs)) + b"\n"
    out = cache_dir("ca") / f"bundle-{hashlib.sha256(body).hexdigest()[:16]}.pem"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(body)
        tmp.chmod(0o644)
        tmp.replace(out)
    return out
