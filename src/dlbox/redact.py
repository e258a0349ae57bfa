"""One way to hide a password: in a URL, or anywhere in a text (config files, command output)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s\"']+):(?P<pw>[^@/\s\"']+)@")


# any user part before the host (user:password@, or a token alone: https://TOKEN@host)
_ANY_USERINFO = re.compile(r"://[^/\s\"@]*@")

_JSON_SECRET = re.compile(r'("(?:auth|password|identitytoken|registrytoken)"\s*:\s*")[^"]*(")', re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """`http://user:secret@host:3128` → `http://user:***@host:3128`, anywhere in `text`;
    also the credentials a docker config.json keeps under "auths"."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _JSON_SECRET.sub(r"\1***\2", text)


def has_userinfo(text: str) -> bool:
    """Whether `text` holds a URL with a user part (a password, or a token used as the user)."""
    return bool(_ANY_USERINFO.search(text))


def mask_url(url: str | None) -> str | None:
    """http://user:secret@host:port → http://user:***@host:port (never print a password)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
