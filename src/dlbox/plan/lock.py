"""What a lock is made of, and how to read one back. Pure: no uv, no network (engine/lock.py runs uv).

One lock per build variant, next to dlbox.toml and committed: `dlbox-cpu.lock` for a laptop,
`dlbox-cu126.lock` for a cu126 server (any machine writes it: `dlbox lock --driver 570.133.20`).
The variant decides the torch build, the Python and platform decide the wheels, so a lock is
exact for one (variant, Python, platform); its header records them and a hash of every input,
and `dlbox build`/`up` relock when that hash no longer matches (`status()`).

The file is uv's requirements format with hashes, so `uv pip install -r` (or pip) reads it;
the header lines dlbox reads back start with `# dlbox-`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dlbox.plan.project_pins import dependency_caps, uv_lock_preferences
from dlbox.plan.torch_family import FAMILY, Source
from dlbox.redact import mask_secrets, mask_url

FORMAT = "1"
SERIES_MEMBERS = ("torch", "torchvision", "torchaudio", "torchtext")
# glibc of each base OS: the manylinux tag uv resolves wheels for (uv --python-platform)
# (Debian/Ubuntu package versions of libc6: bullseye 2.31, bookworm 2.36, trixie 2.41, focal 2.31, jammy 2.35,
# noble 2.39; an unknown OS gets manylinux_2_28, which every supported base satisfies)
GLIBC = {"debian-bullseye": "2_31", "debian-bookworm": "2_36", "debian-trixie": "2_41", "ubuntu20.04": "2_31",
         "ubuntu22.04": "2_35", "ubuntu24.04": "2_39"}
# the newest manylinux tag the pinned uv (0.13.9) takes for --python-platform: trixie's 2.41 is refused
# ("invalid value 'x86_64-manylinux_2_41'"); a wheel for 2_40 or older runs on 2.41
UV_MAX_GLIBC = (2, 40)


def is_pytorch_index(url: str) -> bool:
    """PyTorch's own variant indexes (download.pytorch.org/whl/cu121 and mirrors of that path)."""
    p = urlsplit(url)
    return p.hostname == "download.pytorch.org" or bool(re.search(r"/whl/(cu\d+|cpu|rocm[\d.]+)/?$", p.path))


def python_platform(base_os: str) -> str:
    major, minor = (int(x) for x in GLIBC.get(base_os.lower(), "2_28").split("_"))
    major, minor = min((major, minor), UV_MAX_GLIBC)
    return f"x86_64-manylinux_{major}_{minor}"


@dataclass(frozen=True)
class LockInputs:
    """Everything `uv pip compile` is given for one family source. `digest()` names them."""

    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    index_url: str | None             # None: uv's default (PyPI)
    extra_index_urls: tuple[str, ...]  # searched before index_url (uv's order)
    find_links: tuple[str, ...]
    python: str
    platform: str
    source: Source | None
    notes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()    # local wheels of another build ("torch!=2.13.0+cpu"): host-specific, not hashed
    preferences: tuple[str, ...] = ()  # the project's own uv.lock versions ("numpy==2.2.6"): preferred, not required

    @property
    def all_constraints(self) -> tuple[str, ...]:
        return self.constraints + self.excludes

    def digest(self) -> str:
        """What the resolution depends on. Where the packages are fetched from (index mirrors,
        find_links directories) is left out on purpose: a committed lock stays fresh on another
        machine with another mirror; the family source's kind is checked separately (status())."""
        data = {"format": FORMAT, "requirements": sorted(self.requirements), "constraints": sorted(self.constraints),
                "python": self.python, "platform": self.platform,
                "source": self.source.variant if self.source else None}
        if self.preferences:
            data["preferences"] = sorted(self.preferences)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def uv_args(self) -> list[str]:
        args = ["--python-version", self.python, "--python-platform", self.platform]
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for fl in self.find_links:
            args += ["--find-links", fl]
        return args


def _project_requirement(d) -> tuple[str | None, str | None]:
    """(requirement text for uv, note) for one declared Dep."""
    if d.editable or (d.url and not d.vcs and not d.url.startswith(("http://", "https://"))):
        return None, None  # the project's own package or a local path: installed from the source, not locked
    if d.requirement:
        return d.requirement, None
    if d.url:
        return d.url, None
    return None, f"{d.origin}: an unnamed requirement dlbox cannot lock; left out"


def wheel_excludes(local_wheels: tuple, source: Source | None) -> tuple[str, ...]:
    """Local wheels of another build must not stand in for the planned one: 2.13.0+cpu satisfies
    torch==2.13.0 (PEP 440 ignores the local label), so with the host's find_links mounted the
    install would take the CPU wheel beside PyPI's torchvision ("operator torchvision::nms does
    not exist"). Constraints like "torch!=2.13.0+cpu", for the resolver and for the install."""
    want_label = source.variant if source and source.kind in ("find_links", "index") else None
    out = []
    for w in local_wheels:
        label = w.version.partition("+")[2]
        if label and label != want_label:
            out.append(f"{w.name}!={w.version}")
    return tuple(dict.fromkeys(out))


def lock_inputs(plan, declared, source: Source | None, *, project_dir: Path, local_wheels: tuple = ()) -> LockInputs:
    """The resolver's inputs for `plan` with the family from `source`. `local_wheels`: the
    torch-family wheels in the find_links directories (host.local_wheels)."""
    b = plan.build
    pins = {p.name: p.requirement for p in b.family}
    reqs: list[str] = []
    notes: list[str] = []
    deps = tuple(declared.deps) if declared is not None else ()
    for d in deps:
        if d.group is not None or (d.name in SERIES_MEMBERS and d.name in pins):
            continue
        if d.name in SERIES_MEMBERS and b.torch is None:
            continue  # torch = "none": the project's torch lines are not installed
        text, note = _project_requirement(d)
        if note:
            notes.append(note)
        if text:
            reqs.append(text)
    from dlbox.plan.torch_family import asks_from_lines

    pip_asks = asks_from_lines(b.pip, "dlbox.toml")
    for line, d in zip(b.pip, pip_asks):
        if not (d.name in SERIES_MEMBERS and d.name in pins):
            reqs.append(line)
    reqs += [p for name, p in pins.items()]
    constraints = [c.requirement for c in (declared.constraints if declared is not None else ()) if c.requirement]
    constraints += list(pins.values())
    caps, cap_notes = dependency_caps(tuple(d for d in deps if d.group is None) + pip_asks)
    constraints += caps
    notes += cap_notes
    excludes = wheel_excludes(local_wheels, source)
    index = b.pip_index
    extra: list[str] = []
    if source is not None and source.kind == "index" and source.index_url:
        extra.append(source.index_url)
    for i in (declared.indexes if declared is not None else ()):
        if is_pytorch_index(i.url):
            notes.append(f"{i.origin}: {mask_url(i.url)} is PyTorch's index for one build; the plan's torch "
                         f"source replaces it ({source.why if source else 'no torch'})")
            continue
        if i.kind == "primary" and not b.pip_index:
            index = i.url
        elif i.url not in extra:
            extra.append(i.url)
    extra += [u for u in b.pip_extra_index if u not in extra]
    links: list[str] = []
    if source is not None and source.find_links:
        links.append(source.find_links)
    links += [d for d in b.find_links if d not in links]
    for f in (declared.find_links if declared is not None else ()):
        loc = f.location
        if "://" not in loc:
            loc = str((project_dir / loc).resolve())
        if loc not in links:
            links.append(loc)
    prefs = uv_lock_preferences(declared, python=plan.choice.python, skip=set(pins) | set(FAMILY))
    if prefs:
        notes.append(f"uv.lock: the project's {len(prefs)} locked versions are preferred (the torch family is the plan's)")
    return LockInputs(tuple(dict.fromkeys(reqs)), tuple(dict.fromkeys(constraints)), index, tuple(extra),
                      tuple(links), plan.choice.python, python_platform(b.base_os), source, tuple(notes),
                      tuple(dict.fromkeys(excludes)), prefs)


# -- the lock file ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Locked:
    """A lock file read back: its header and its pins."""

    file: str
    inputs: str                      # the digest it was made from
    source: str                      # family source kind: "find_links" | "index" | "pypi" | "none"
    source_index: str | None
    pins: dict                       # name -> "name==version"
    via: dict                        # name -> tuple of names that need it
    sha256: str                      # of the whole file

    def torch_layer(self) -> tuple[str, ...]:
        """torch and everything it needs (its closure in the lock), for the shared torch layer."""
        if "torch" not in self.pins:
            return ()
        need = {"torch"}
        changed = True
        while changed:
            changed = False
            for name, parents in self.via.items():
                if name not in need and any(p in need for p in parents):
                    need.add(name)
                    changed = True
        # members of the family other than torch belong to the project layer
        need -= {m for m in FAMILY if m not in ("torch", "triton")}
        return tuple(self.pins[n] for n in sorted(need) if n in self.pins)


@dataclass(frozen=True)
class LockRef:
    """What the build needs to know of the lock it installs (BuildPlan.locked)."""

    file: str                        # project-relative
    sha256: str                      # the image tag follows it
    source: str                      # family source kind the lock was made with
    torch_layer: tuple[str, ...]     # torch's closure, pinned: the shared torch layer
    count: int = 0                   # packages in the lock
    excludes: tuple[str, ...] = ()   # this host's local wheels of another build (wheel_excludes): install constraints

    @classmethod
    def of(cls, locked: Locked, excludes: tuple[str, ...] = ()) -> "LockRef":
        return cls(locked.file, locked.sha256, locked.source, locked.torch_layer(), len(locked.pins), excludes)


def header(plan, inputs: LockInputs) -> str:
    s = inputs.source
    lines = [
        "# dlbox lock: the exact set `dlbox build` installs. Commit it; `dlbox lock` rewrites it.",
        f"# One lock per build variant: this is {plan.build.lock} (Python {inputs.python}, {inputs.platform}).",
        f"# dlbox-format: {FORMAT}",
        f"# dlbox-inputs: {inputs.digest()}",
        f"# dlbox-source: {s.kind if s else 'none'}",
        f"# dlbox-source-index: {mask_url(s.index_url) if s and s.index_url else '-'}",
    ]
    if s:
        lines.append(f"# torch family: {s.why}")
    if inputs.index_url:
        lines.append(f"# index: {mask_url(inputs.index_url)}")
    lines += [f"# extra index: {mask_url(u)}" for u in inputs.extra_index_urls]
    lines += [f"# find-links: {u}" for u in inputs.find_links]
    lines += [f"# note: {n}" for n in inputs.notes]
    return "\n".join(lines) + "\n"


def compose(plan, inputs: LockInputs, body: str) -> str:
    """The lock file: dlbox's header, then uv's output with any credentials masked."""
    return header(plan, inputs) + mask_secrets(body)


_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==|@)\s*([^\s\\;]+)")


def parse(text: str, file: str) -> Locked:
    meta: dict[str, str] = {}
    pins: dict[str, str] = {}
    via: dict[str, tuple[str, ...]] = {}
    current = None
    in_via = False
    for line in text.splitlines():
        m = re.match(r"^# dlbox-([a-z-]+): (.*)$", line)
        if m:
            meta[m.group(1)] = m.group(2).strip()
            continue
        if not line.strip():
            continue
        if not line[0].isspace() and not line.startswith("#"):
            e = _ENTRY.match(line)
            in_via = False
            if e:
                from packaging.utils import canonicalize_name

                current = canonicalize_name(e.group(1))
                pins[current] = line.rstrip(" \\").strip()
                via.setdefault(current, ())
            continue
        s = line.strip()
        if current is None:
            continue
        if s.startswith("# via"):
            rest = s[len("# via"):].strip()
            in_via = not rest
            if rest:
                via[current] = tuple(x.strip() for x in rest.split(",") if x.strip())
        elif in_via and s.startswith("#   "):
            via[current] = via[current] + (s[4:].strip(),)
        elif in_via and s.startswith("#") and not s.startswith("#   "):
            in_via = False
    from packaging.utils import canonicalize_name

    via = {k: tuple(canonicalize_name(v) for v in vs if not v.startswith("-")) for k, vs in via.items()}
    return Locked(file=file, inputs=meta.get("inputs", ""), source=meta.get("source", "none"),
                  source_index=None if meta.get("source-index", "-") == "-" else meta.get("source-index"),
                  pins=pins, via=via, sha256=hashlib.sha256(text.encode()).hexdigest())


def candidates(plan, declared, *, project_dir: Path, local_wheels: tuple = ()) -> tuple[LockInputs, ...]:
    """The inputs for each family source of the plan, in the order `dlbox lock` tries them."""
    sources = plan.build.family_sources or (None,)
    return tuple(lock_inputs(plan, declared, s, project_dir=project_dir, local_wheels=local_wheels) for s in sources)


def status(path: Path, options: tuple[LockInputs, ...]) -> tuple[str, Locked | None]:
    """("fresh" | "stale" | "missing", the lock read back). Fresh: made from exactly the inputs
    one of the plan's family sources gives now (the one it records)."""
    if not path.is_file():
        return "missing", None
    locked = parse(path.read_text(), path.name)
    for o in options:
        if (o.source.kind if o.source else "none") == locked.source and o.digest() == locked.inputs:
            return "fresh", locked
    return "stale", locked
