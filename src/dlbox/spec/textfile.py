"""Reading a text file a user gave us: UTF-8 (a BOM is fine), UTF-16 with a BOM (what Windows
PowerShell's `nvidia-smi > out.txt` writes), or one clear error naming the file and the byte."""

from __future__ import annotations

import codecs
from pathlib import Path

from dlbox.errors import DlboxError

BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_user_text(path: Path, what: str, *, error: type[DlboxError] = DlboxError) -> str:
    """The text of PATH; `error` (naming WHAT) when it is not a readable text file."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not {what}") from None
    except FileNotFoundError:
        raise error(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    encoding = next((enc for bom, enc in BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                    fix="save it as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8), or check it is the right file") from None
    if "\x00" in text:
        raise error(f"{path}: {what} is binary, not text (a NUL byte at offset {text.index(chr(0))})",
                    fix="check it is the right file") from None
    return text
