"""The torch family as one unit, and the project's own torch constraints as plan inputs.

torch, torchvision, torchaudio, torchtext (and xformers, triton) are built per torch release
and per CUDA variant: mixing a CPU torch with PyPI's CUDA torchvision gives "operator
torchvision::nms does not exist" (measured here). So the plan

- reads what the project asks of the family (`torch>=2.8,<2.9`, `torch==2.2.2+cu121`,
  `torchvision==0.17.2`), with file and line;
- picks the newest torch the host can run *inside* that range (`choose_for_project`), or
  refuses before any build naming the nearest torch that fits both;
- pins every member the project uses to the series that belongs to that torch
  (catalog/torch_family.json), and
- lists, in order, where the whole family can come from (`family_sources`): local wheels,
  PyTorch's variant index, PyPI's default build. `dlbox lock` takes the first that answers
  and says which.

Pure: reads only the catalog and the facts handed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from dlbox.catalog import load, vkey
from dlbox.catalog.family import MEMBERS_WITH_SERIES, load_family
from dlbox.errors import PlanError
from dlbox.host.wheels import LocalWheel
from dlbox.plan.gpu import WHEEL_INDEX, ImageChoice, TorchPick, TorchRequest

FAMILY = ("torch", "torchvision", "torchaudio", "torchtext", "torchdata", "xformers", "triton")
PYPI = "https://pypi.org/simple"


@dataclass(frozen=True)
class Ask:
    """One family requirement the project wrote."""

    name: str
    specifier: str          # ">=2.8,<2.9" ("" = any)
    where: str              # "requirements.txt:3"
    local: str | None = None  # "cu121" from "==2.2.2+cu121"

    def __str__(self) -> str:
        return f"{self.where} {self.name}{self.specifier}"


@dataclass(frozen=True)
class ProjectTorch:
    """What the project asks of the torch family."""

    asks: tuple[Ask, ...] = ()

    @property
    def members(self) -> tuple[str, ...]:
        """Family members the project installs (torch itself included when it names it)."""
        return tuple(dict.fromkeys(a.name for a in self.asks))

    @property
    def variant(self) -> tuple[str, Ask] | None:
        """A local version label on torch ("cu121"): the build the project was written for."""
        a = next((a for a in self.asks if a.name == "torch" and a.local), None)
        return (a.local, a) if a else None

    def constrains(self) -> bool:
        return any(a.specifier for a in self.asks)

    def admits(self, torch_version: str) -> Ask | None:
        """The first ask that excludes `torch_version` (None when all admit it)."""
        row = load_family().row(torch_version)
        for a in self.asks:
            if not a.specifier:
                continue
            spec = _spec(a.specifier)
            if a.name == "torch":
                if not (spec.contains(torch_version) or spec.contains(f"{torch_version}+{a.local}" if a.local else
                                                                      torch_version)):
                    return a
            elif a.name in MEMBERS_WITH_SERIES:
                series = row.series(a.name) if row else None
                if series and not any(spec.contains(f"{series}.{p}", prereleases=True) for p in range(10)):
                    return a
        return None


def _spec(text: str) -> SpecifierSet:
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return SpecifierSet()


def project_torch(deps: Iterable) -> ProjectTorch:
    """Family asks from the project's declared deps (objects with name, specifier, origin,
    local_version, group; `dlbox.spec.declared.Dep`). Only what a plain install gets counts."""
    asks = []
    for d in deps:
        if getattr(d, "group", None) is not None or d.name not in FAMILY:
            continue
        local = getattr(d, "local_version", None)
        spec = d.specifier
        if local:  # "==2.2.2+cu121": the version is the ask, the label is the variant
            spec = ",".join(p.split("+", 1)[0] for p in spec.split(","))
        asks.append(Ask(d.name, spec, str(d.origin), local))
    return ProjectTorch(tuple(asks))


@dataclass(frozen=True)
class _LineDep:
    name: str
    specifier: str
    origin: str
    local_version: str | None
    group: None = None


def asks_from_lines(lines: Iterable[str], where: str) -> tuple[_LineDep, ...]:
    """Requirement strings (dlbox.toml [env] pip) as deps `project_torch` reads."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    out = []
    for line in lines:
        try:
            r = Requirement(line)
        except InvalidRequirement:
            continue
        spec = str(r.specifier)
        local = next((p.split("+", 1)[1] for p in spec.split(",") if "+" in p), None)
        out.append(_LineDep(canonicalize_name(r.name), spec, where, local))
    return tuple(out)


# -- choosing torch inside the project's range ---------------------------------------------

def _label_cuda(label: str) -> str | None:
    """"cu121" -> "12.1", "cu118" -> "11.8"; None for cpu/rocm labels."""
    if not label.startswith("cu") or not label[2:].isdigit() or len(label) < 4:
        return None
    digits = label[2:]
    return f"{digits[:-1]}.{digits[-1]}"


def choose_for_project(req: TorchRequest, wish: ProjectTorch, choose: Callable[[TorchRequest], ImageChoice],
                       ) -> tuple[ImageChoice, list[str], list[str]]:
    """`choose` (plan.gpu.choose bound to the host) run inside the project's torch range.

    Returns the choice plus extra reasons and warnings. Raises PlanError naming the project
    line and the nearest torch that fits both the project and this host."""
    reasons: list[str] = []
    warnings: list[str] = []
    variant = wish.variant
    if variant and req.gpu:
        cuda = _label_cuda(variant[0])
        if cuda and req.cuda == "auto":
            req = replace(req, cuda=cuda)
            reasons.append(f"{variant[1].where} asks for the {variant[0]} build: CUDA {cuda} if this host has a GPU")
    if variant:
        reasons.append(f"{variant[1].where} asks for the {variant[0]} build of torch; when this plan has no GPU the "
                       "same torch version comes as the CPU build (`dlbox lock --driver ...` makes the GPU lock)")
    members = wish.members
    if req.torch == "none" or not wish.asks:
        return choose(req), reasons, warnings
    cat = load()
    if req.torch != "auto":
        bad = wish.admits(req.torch)
        if bad:
            raise PlanError(f"dlbox.toml asks for torch {req.torch} but {bad} excludes it",
                            fix=f"remove torch from [env] to follow the project, or change {bad.where}")
        family_pins(req.torch, members)  # refuses a member with no release for this torch
        return choose(req), reasons, warnings
    best = choose(req)
    if best.torch is None or (wish.admits(best.torch.version) is None and usable_series(best.torch.version, members)):
        return best, reasons, warnings
    versions = [r.version for r in sorted(cat.torch, key=lambda r: vkey(r.version), reverse=True)
                if wish.admits(r.version) is None and usable_series(r.version, members)]
    asks = "; ".join(str(a) for a in wish.asks if a.specifier) or ", ".join(str(a) for a in wish.asks)
    if not versions:
        raise PlanError(f"no torch release dlbox knows satisfies {asks} [torch.json, torch_family.json]",
                        fix="run `dlbox catalog` for the known releases and relax the pin, or put the wheel in find_links")
    first_error: PlanError | None = None
    for v in versions:
        try:
            choice = choose(replace(req, torch=v))
        except PlanError as exc:
            first_error = first_error or exc
            continue
        reasons.insert(0, f"torch {v}: the newest release inside the project's range ({asks}) that this host "
                          "can run")
        return choice, reasons, warnings
    raise PlanError(f"{asks}: no torch in that range runs here ({first_error.message})",
                    fix=_nearest(req, versions, choose) + (f"; {first_error.fix}" if first_error.fix else ""))


def _nearest(req: TorchRequest, wanted: list[str], choose) -> str:
    """Name a torch that fits both: the project's range with another Python, or the host's best."""
    cat = load()
    needs = ""
    for v in wanted:
        row = cat.torch_row(v)
        if row and not (vkey(row.python_min) <= vkey(req.python) <= vkey(row.python_max)):
            for py in (row.python_max, row.python_min):
                try:
                    choose(replace(req, torch=v, python=py))
                except PlanError:
                    continue
                return f'torch {v} runs here with Python {py}: set python = "{py}" in [env]'
            needs = needs or (f"torch {v} needs Python {row.python_min}-{row.python_max}, which this plan cannot "
                              "provide; ")
    try:
        best = choose(replace(req, torch="auto"))
    except PlanError:
        return needs + "no catalogued torch runs on this host"
    t = best.torch
    return needs + (f"nearest torch this host runs: {t.version}+{t.variant}; widen the project's pin to admit it"
                    if t else "this host runs no catalogued torch")


# -- the family's pins and sources --------------------------------------------------------------

@dataclass(frozen=True)
class Pin:
    name: str
    requirement: str        # "torchvision==0.28.*"
    why: str


def family_pins(torch_version: str, members: Iterable[str]) -> tuple[Pin, ...]:
    """Requirements that keep each member on its torch's series. Raises PlanError for a member
    with no release for this torch (torchtext after 2.3)."""
    table = load_family()
    row = table.row(torch_version)
    pins = [Pin("torch", f"torch=={torch_version.split('+', 1)[0]}", "the plan's torch")]
    for m in dict.fromkeys(members):
        if m == "torch" or m not in MEMBERS_WITH_SERIES:
            continue
        if row is None:
            continue  # a torch newer than the table: the member's own pin on torch decides
        series = row.series(m)
        if series is None:
            last = max((r for r in table.rows if r.series(m)), key=lambda r: vkey(r.torch))
            raise PlanError(f"{m} has no release for torch {row.torch} (the last, {m} {last.series(m)}, is for "
                            f"torch {last.torch}) [torch_family.json]",
                            fix=f'pin torch to {last.torch} (torch = "{last.torch}.*" in the project) or drop {m}')
        pins.append(Pin(m, f"{m}=={series}.*", f"{m} {series} belongs to torch {row.torch} [torch_family.json {row.torch}]"))
    return tuple(pins)


def usable_series(torch_version: str, members: Iterable[str]) -> bool:
    try:
        family_pins(torch_version, members)
    except PlanError:
        return False
    return True


@dataclass(frozen=True)
class Source:
    """One place the whole family can come from, in the plan's order of preference."""

    kind: str               # "find_links" | "index" | "pypi"
    variant: str            # the build the wheels are: "cpu", "cu126", "cu130"
    index_url: str | None   # the index the family comes from (None: find_links + the default index)
    find_links: str | None  # host directory with the wheels
    why: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "variant": self.variant, "index_url": self.index_url,
                "find_links": self.find_links, "why": self.why}


def _local_has(wheels: tuple[LocalWheel, ...], name: str, series: str, label: str, py_tag: str) -> bool:
    return any(w.name == name and w.version.startswith(series + ".") and w.version.endswith("+" + label)
               and py_tag in w.python_tags for w in wheels)


def family_sources(pick: TorchPick | None, members: Iterable[str], *, gpu: bool, cuda: str | None, python: str,
                   local_wheels: tuple[LocalWheel, ...] = ()) -> tuple[Source, ...]:
    """Where the family can come from, best first. A source is listed only if every member
    the project uses is there in the same build as torch."""
    if pick is None:
        return ()
    members = [m for m in dict.fromkeys(members) if m in MEMBERS_WITH_SERIES]
    row = load_family().row(pick.version)
    out: list[Source] = []
    if pick.find_links:
        tag = "cp" + python.replace(".", "")
        missing = [m for m in members if not (row and row.series(m)
                                              and _local_has(local_wheels, m, row.series(m), pick.variant, tag))]
        if not missing:
            out.append(Source("find_links", pick.variant, None, pick.find_links,
                              f"torch {pick.version}+{pick.variant} from the local wheel in {pick.find_links}"))
        else:
            out.append(Source("index", pick.variant, WHEEL_INDEX + pick.variant, None,
                              f"the local torch {pick.version}+{pick.variant} has no {', '.join(missing)} "
                              f"{pick.variant} wheel beside it in {pick.find_links}; mixing builds breaks "
                              f"(\"operator torchvision::nms does not exist\"), so the whole family comes "
                              f"from {WHEEL_INDEX + pick.variant}"))
    else:
        out.append(Source("index", pick.variant, pick.index_url or WHEEL_INDEX + pick.variant, None,
                          f"torch {pick.version}+{pick.variant} and its family from {pick.index_url}"))
    pypi = row.pypi_default_variant if row else None
    if pypi and not any(s.kind == "pypi" for s in out):
        pcuda = _label_cuda(pypi)
        fits = (not gpu) or (cuda is not None and pcuda is not None and vkey(pcuda) <= vkey(cuda))
        if fits:
            how = ("it carries CUDA libraries but runs on the CPU" if not gpu else
                   f"CUDA {pcuda} <= the planned CUDA {cuda}")
            out.append(Source("pypi", pypi, PYPI, None,
                              f"PyPI's default torch {pick.version} build ({pypi}; {how}) with the family "
                              "from PyPI, when PyTorch's index does not answer"))
    return tuple(out)
