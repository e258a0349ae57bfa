"""Image lifecycle: what each project's images cost on disk, and `gc` of the old ones.

Every edit of a project's inputs makes a new `dlbox/<project>:<hash>` image; the old ones share
the base, Python and torch layers with it but keep their own project layers. `gc` keeps, per
project, the current environment image and the N before it (newest first), their JupyterLab
images and the baked image; it never removes an image that a container uses (running or not) or
that carries another repository's tag too, and it leaves the shared layers alone (the engine frees
a layer only when no image is left on it). Then BuildKit's cache is pruned down to a budget.

Sizes come from the engine's own accounting (`docker system df -v`: an image's unique bytes are
those no other image shares).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dlbox.engine.docker import Docker, buildkit_client
from dlbox.engine.tools import TOOLS_REPO

ENV_TAG = re.compile(r"^[0-9a-f]{12}$")
JUPYTER_TAG = re.compile(r"^(?P<env>[0-9a-f]{12})-jupyter(-[0-9a-f]+)?$")   # `<env>-jupyter` (a stage) or older `-<hash>`
_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def parse_size(text: str) -> int:
    """Docker's decimal human sizes ("798.2MB", "1.333kB", "0B") as bytes."""
    m = re.match(r"^\s*([0-9.]+)\s*([kKMGT]?B)\s*$", text or "")
    if not m:
        return 0
    return int(float(m[1]) * _UNITS[m[2].upper()])


@dataclass(frozen=True)
class ImageRow:
    repo: str
    tag: str
    id: str
    created: str          # "2026-11-26 03:00:36 +0000 UTC": sorts by time
    size: int
    unique: int
    shared: int
    containers: int

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def project(self) -> str:
        """The project's name: `dlbox/NAME-<8 hex of its path>` → NAME."""
        name = self.repo.split("/", 1)[1] if self.repo.startswith("dlbox/") else self.repo
        return re.sub(r"-[0-9a-f]{8}$", "", name)


def image_rows(docker: Docker) -> list[ImageRow]:
    data = docker.run(["system", "df", "-v", "--format", "{{json .Images}}"], timeout=300).stdout.decode()
    import json

    rows = []
    for d in json.loads(data or "[]") or []:
        rows.append(ImageRow(repo=d.get("Repository", ""), tag=d.get("Tag", ""), id=d.get("ID", ""),
                             created=d.get("CreatedAt", ""), size=parse_size(d.get("Size", "")),
                             unique=parse_size(d.get("UniqueSize", "")), shared=parse_size(d.get("SharedSize", "")),
                             containers=int(d.get("Containers") or 0)))
    return rows


def dlbox_rows(rows: list[ImageRow]) -> list[ImageRow]:
    return [r for r in rows if r.repo.startswith("dlbox/")]


def used_image_ids(docker: Docker) -> set[str]:
    """Image IDs of every container, running or stopped."""
    ids = docker.run(["ps", "-aq", "--no-trunc"], timeout=60).stdout.decode().split()
    if not ids:
        return set()
    out = docker.run(["inspect", "--format", "{{.Image}}", *ids], check=False, timeout=120).stdout.decode()
    return set(out.split())


@dataclass
class GcPlan:
    remove: list[ImageRow] = field(default_factory=list)
    kept_in_use: list[ImageRow] = field(default_factory=list)


def plan_gc(rows: list[ImageRow], *, keep: int, in_use: set[str], projects: tuple[str, ...] = ()) -> GcPlan:
    """Which dlbox images to remove: per project, all but the newest KEEP+1 environment images
    (and the JupyterLab images built on the removed ones); for dlbox/tools all but the newest."""
    plan = GcPlan()
    tagged_elsewhere = {}
    for r in rows:
        tagged_elsewhere.setdefault(r.id, set()).add(r.repo)
    by_repo: dict[str, list[ImageRow]] = {}
    for r in dlbox_rows(rows):
        if not projects or r.project in projects or r.repo.split("/", 1)[1] in projects:
            by_repo.setdefault(r.repo, []).append(r)
    for repo, items in by_repo.items():
        items.sort(key=lambda r: r.created, reverse=True)
        if repo == TOOLS_REPO:
            candidates = items[1:]
        else:
            envs = [r for r in items if ENV_TAG.match(r.tag)]
            kept_env = {r.tag for r in envs[: keep + 1]}
            candidates = [r for r in envs[keep + 1:]]
            candidates += [r for r in items if (m := JUPYTER_TAG.match(r.tag)) and m["env"] not in kept_env]
        for r in candidates:
            if r.containers or r.id in in_use or len(tagged_elsewhere.get(r.id, ())) > 1:
                plan.kept_in_use.append(r)
            else:
                plan.remove.append(r)
    return plan


@dataclass
class GcResult:
    removed: list[str]
    kept_in_use: list[str]
    images_freed: int       # bytes the engine's image store shrank by
    cache_freed: int        # bytes BuildKit's cache shrank by
    errors: list[str]


def _images_total(docker: Docker) -> int:
    data = docker.run(["system", "df", "--format", "{{.Type}}\t{{.Size}}"], timeout=300).stdout.decode()
    for line in data.splitlines():
        kind, _, size = line.partition("\t")
        if kind.strip() == "Images":
            return parse_size(size)
    return 0


def prune_cache(docker: Docker, budget: str) -> int:
    """`docker builder prune --keep-storage BUDGET`: bytes freed, as the engine reports them."""
    client = Docker(host=docker.host, binary=buildkit_client(docker.binary) or docker.binary)
    proc = client.run(["builder", "prune", "-f", "--keep-storage", budget], check=False, timeout=1800)
    m = re.search(r"Total reclaimed space:\s*(\S+)", proc.stdout.decode(errors="replace"))
    return parse_size(m[1]) if m else 0


def gc(docker: Docker, *, keep: int = 2, cache_budget: str = "20GB", dry_run: bool = False,
       projects: tuple[str, ...] = ()) -> GcResult:
    """PROJECTS: only these projects' images (all dlbox images when empty)."""
    rows = image_rows(docker)
    plan = plan_gc(rows, keep=keep, in_use=used_image_ids(docker), projects=projects)
    before = _images_total(docker)
    removed, errors = [], []
    if not dry_run:
        for r in plan.remove:
            proc = docker.run(["rmi", r.ref], check=False, timeout=600)
            if proc.returncode == 0:
                removed.append(r.ref)
            else:
                errors.append(f"{r.ref}: {proc.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    else:
        removed = [r.ref for r in plan.remove]
    images_freed = max(0, before - _images_total(docker)) if not dry_run else sum(r.unique for r in plan.remove)
    cache_freed = 0 if dry_run else prune_cache(docker, cache_budget)
    return GcResult(removed, [r.ref for r in plan.kept_in_use], images_freed, cache_freed, errors)
