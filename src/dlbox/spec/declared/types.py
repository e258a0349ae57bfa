"""What a project declares about its own environment, read from its files (not from dlbox.toml).

Plain frozen data. Every requirement, index and range keeps the file and line it came from, so
the plan and its refusals can say "requirements/base.txt:3" instead of "your requirements".
Paths are relative to the project directory; `Declared.to_dict()` is JSON-ready.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Origin:
    """Where something was declared: a project-relative file and a 1-based line (None: whole file)."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Dep:
    """One Python requirement as the project wrote it.

    `requirement` is PEP 508 text that `packaging.requirements.Requirement` accepts (for a
    direct reference: "name @ url"); it is "" for an unnamed local path or URL (see `url`).
    `group` is None for what a plain install gets, else "extra:NAME", "group:NAME" (PEP 735),
    or "dev" (uv's legacy dev-dependencies).
    """

    name: str                    # canonical (packaging.utils.canonicalize_name); "" if unknown
    requirement: str
    origin: Origin
    specifier: str = ""          # ">=2.8,<2.9"; "" for any
    extras: tuple[str, ...] = ()
    marker: str | None = None
    url: str | None = None       # git+https://…, https://….whl, file:…, or a local path as written
    editable: bool = False
    hashes: tuple[str, ...] = ()
    group: str | None = None
    source: str = "requirements"  # requirements | pyproject | setup.py | setup.cfg | conda | imports

    @property
    def vcs(self) -> bool:
        return bool(self.url) and self.url.split("+", 1)[0] in ("git", "hg", "svn", "bzr") and "+" in self.url

    @property
    def local_version(self) -> str | None:
        """"cu121" for torch==2.2.2+cu121: a variant the default index does not have."""
        for part in self.specifier.split(","):
            if "+" in part:
                return part.split("+", 1)[1].strip()
        return None


@dataclass(frozen=True)
class Index:
    """A package index the project names. kind: primary (--index-url, replaces PyPI) or extra."""

    url: str
    kind: str                    # "primary" | "extra"
    origin: Origin
    name: str | None = None      # [[tool.uv.index]] name
    explicit: bool = False       # uv: used only by packages pinned to it in [tool.uv.sources]
    packages: tuple[str, ...] = ()  # uv sources that pin packages to this index


@dataclass(frozen=True)
class FindLinks:
    location: str                # a URL or a path as written
    origin: Origin


@dataclass(frozen=True)
class PythonRange:
    """The Pythons the project accepts, as a PEP 440 specifier (">=3.8", "==3.10.*")."""

    specifier: str
    origin: Origin


@dataclass(frozen=True)
class Extension:
    """A compiled extension the project builds itself (setup.py ext_modules)."""

    kind: str                    # "cuda" (CUDAExtension) | "cpp" (CppExtension / setuptools Extension)
    name: str
    origin: Origin


@dataclass(frozen=True)
class LocalPackage:
    """The project itself (or a sub-directory) is a package to install: `-e .`, pyproject, setup.py."""

    path: str                    # "." or "./sub", project-relative
    origin: Origin
    name: str | None = None
    editable: bool = True
    backend: str | None = None   # build-backend from [build-system], or "setuptools (setup.py)"
    build_requires: tuple[str, ...] = ()
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True)
class Unmapped:
    """A declared package dlbox cannot install from PyPI (conda-only), with why."""

    name: str
    origin: Origin
    reason: str


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str | None
    source: str                  # "registry:URL" | "git:URL" | "editable:." | "virtual:." | "path:…" | "url:…"
    markers: tuple[str, ...] = ()  # uv's resolution-markers: the environments this version is for (none: all)


@dataclass(frozen=True)
class UvLock:
    file: str
    requires_python: str | None
    packages: tuple[LockedPackage, ...]


@dataclass(frozen=True)
class SystemNeed:
    """Debian packages a Python dependency needs at run or build time, and why (catalog row)."""

    debian: tuple[str, ...]
    because: str                 # the canonical PyPI name (or "git", "torch.compile", "sdist")
    reason: str
    source: str
    origin: Origin | None = None


@dataclass(frozen=True)
class Declared:
    """Everything read from one project directory. Empty when the project declares nothing."""

    deps: tuple[Dep, ...] = ()
    constraints: tuple[Dep, ...] = ()         # from -c files: limit versions, install nothing
    indexes: tuple[Index, ...] = ()
    find_links: tuple[FindLinks, ...] = ()
    no_index: Origin | None = None            # --no-index seen
    python: PythonRange | None = None
    local_packages: tuple[LocalPackage, ...] = ()
    unmapped: tuple[Unmapped, ...] = ()
    lock: UvLock | None = None
    system: tuple[SystemNeed, ...] = ()
    torch_compile: tuple[Origin, ...] = ()    # source lines that call torch.compile
    files: tuple[str, ...] = ()               # every file read, in order
    requirement_files: tuple[str, ...] = ()   # requirements files read (the top one, then its -r/-c includes)
    notes: tuple[str, ...] = ()               # what was found or could not be read, for people
    imported: tuple[Dep, ...] = ()            # a proposal from scanning imports (source="imports")

    @property
    def empty(self) -> bool:
        return not (self.deps or self.local_packages or self.lock)

    def names(self, *, groups: bool = False) -> tuple[str, ...]:
        """Canonical names of what a plain install gets (plus extras/groups when asked)."""
        return tuple(sorted({d.name for d in self.deps if d.name and (groups or d.group is None)}))

    def dep(self, name: str) -> Dep | None:
        return next((d for d in self.deps if d.name == name and d.group is None), None)

    @property
    def extensions(self) -> tuple[Extension, ...]:
        return tuple(e for p in self.local_packages for e in p.extensions)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Collector:
    """Mutable scratch space the readers fill; `freeze()` makes the Declared."""

    deps: list[Dep] = field(default_factory=list)
    constraints: list[Dep] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    find_links: list[FindLinks] = field(default_factory=list)
    no_index: Origin | None = None
    python: PythonRange | None = None
    local_packages: list[LocalPackage] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    lock: UvLock | None = None
    files: list[str] = field(default_factory=list)
    requirement_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def freeze(self, **more) -> Declared:
        seen: set[tuple[str, str | None]] = set()
        fl = []
        for f in self.find_links:
            if (f.location, None) not in seen:
                seen.add((f.location, None))
                fl.append(f)
        idx, urls = [], set()
        for i in self.indexes:
            if (i.url, i.kind) not in urls:
                urls.add((i.url, i.kind))
                idx.append(i)
        locals_: dict[str, LocalPackage] = {}
        for p in self.local_packages:     # "-e ." in two files, or setup.py and pyproject: one package
            old = locals_.get(p.path)
            if old is None or (p.extensions and not old.extensions) or (p.backend and not old.backend):
                locals_[p.path] = p if old is None else LocalPackage(**{
                    **old.__dict__, **{k: v for k, v in p.__dict__.items() if v and not getattr(old, k)}})
        return Declared(
            deps=tuple(self.deps), constraints=tuple(self.constraints), indexes=tuple(idx),
            find_links=tuple(fl), no_index=self.no_index, python=self.python,
            local_packages=tuple(locals_.values()), unmapped=tuple(self.unmapped), lock=self.lock,
            files=tuple(dict.fromkeys(self.files)), requirement_files=tuple(dict.fromkeys(self.requirement_files)),
            notes=tuple(self.notes), **more,
        )
