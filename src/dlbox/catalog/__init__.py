"""What dlbox knows about drivers, CUDA, torch wheels and images — as data.

The JSON files next to this module are the catalog: knowledge as validated data. Every row carries a `source`; rows that are reasoned rather than read carry
`"status": "inferred"` and say why. `load()` validates all files (`dlbox.checked`) and returns
an immutable `Catalog`; callers never touch the JSON directly. What was validated is kept
(`catalog.cache`), so a run that plans does not pay for validating the same bytes again.

The numbers come from the upstream sources named in each row; nothing here is computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Annotated

from dlbox.checked import Rule, parse

# Rows are frozen dataclasses, checked by `dlbox.checked.parse` when the catalog is read; a run
# that finds its tables in the cache (see `catalog.cache`) checks nothing and imports no pydantic.
row = dataclass(frozen=True, kw_only=True)


def vkey(version: str) -> tuple[int, ...]:
    """Sort key for dotted numeric versions ("12.10" > "12.9", "470.199.02" > "470.86")."""
    return tuple(int(p) for p in version.split("."))


def _sourced(v: str) -> str:
    if not v.strip():
        raise ValueError("every catalog row needs a source")
    return v


@row
class Table:
    """Catalog data: frozen, and no unknown fields."""

    __pydantic_config__ = {"extra": "forbid"}


@row
class SourcedRow(Table):
    """A catalog row, never without its upstream source."""

    source: Annotated[str, Rule(_sourced)]


@row
class SmiSample(Table):
    driver: str
    cuda: str
    status: str


@row
class CudaDriverRow(SourcedRow):
    cuda: str
    toolkit_exists: bool
    min_driver_linux: str | None
    min_driver_linux_latest_update: str | None
    min_driver_windows: str | None
    minor_compat_floor_linux: str | None
    nvidia_smi_samples: tuple[SmiSample, ...]
    status: str
    notes: str = ""


@row
class DriverBranchRow(SourcedRow):
    branch: int
    cuda_max: str
    status: str


@row
class MinorCompatRow(SourcedRow):
    major: int
    floor_linux: str
    floor_windows: str | None
    status: str


@row
class Variant(Table):
    name: str  # "cu126" | "cpu"
    cuda: str | None
    status: str  # verified | unverified | experimental: does the wheel exist (per the sources)
    note: str = ""
    stable: bool | None = None  # in PyTorch's release matrix: True stable, False experimental, None no matrix


@row
class TorchRow(SourcedRow):
    version: str
    torchvision: str
    torchaudio: str
    python_min: str
    python_max: str
    python_note: str
    variants: tuple[Variant, ...]
    status: str
    notes: str = ""

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


@row
class TorchArchRow(SourcedRow):
    torch_min: str
    torch_max: str
    variant: str
    archs: tuple[str, ...]
    ptx: str | None
    status: str
    reasoning: str = ""


@row
class CudaTagRow(SourcedRow):
    cuda: str
    patch: str
    os: str
    cudnn_part: str | None
    tags: tuple[str, ...]
    status: str


@row
class NgcRow(SourcedRow):
    container: str
    image: str
    pytorch: str
    cuda: str
    cuda_detail: str
    ubuntu: str
    python: str
    min_driver_branch: int | None
    min_driver: str
    verified_fields: tuple[str, ...]
    unverified_fields: tuple[str, ...]
    status: str
    notes: str = ""


@row
class GpuNameRow(SourcedRow):
    match: str
    compute_cap: str
    status: str


@row
class OsPythonRow(SourcedRow):
    os: str
    image: str
    python: str
    install: str
    status: str


@row
class PreferenceRow(SourcedRow):
    python: str
    os: str
    image: str | None = None
    install: str | None = None


@row
class UvPythonRow(SourcedRow):
    """A CPython the pinned uv installs from python-build-standalone (images.json uv_python)."""
    python: str        # "3.13"
    version: str       # "3.13.18": exactly what is installed
    release: str       # python-build-standalone release tag (the mirror's directory)


@row
class BaseRow(SourcedRow):
    image: str
    os: str


@row
class UvPython(Table):
    about: str = ""
    uv: str
    download_host: str
    mirror_layout: str
    cpu_base: BaseRow
    rows: tuple[UvPythonRow, ...]

    def row(self, python: str) -> UvPythonRow | None:
        return next((r for r in self.rows if r.python == python), None)


@row
class FlavorRow(SourcedRow):
    image: str
    flavor: str
    has_nvcc: bool
    contents: str


@row
class BuildDepRow(SourcedRow):
    package: str


@row
class GpuPeakRow(SourcedRow):
    names: tuple[str, ...]  # exactly as nvidia-smi / torch print them
    product: str
    bf16: float  # dense tensor TFLOP/s (datasheet sparse figure halved)
    fp16: float
    tf32: float
    status: str


@row
class Catalog(Table):
    cuda_driver: tuple[CudaDriverRow, ...]
    driver_branches: tuple[DriverBranchRow, ...]
    minor_compat: tuple[MinorCompatRow, ...]
    torch: tuple[TorchRow, ...]
    torch_arch: tuple[TorchArchRow, ...]
    cuda_tags: tuple[CudaTagRow, ...]
    ngc: tuple[NgcRow, ...]
    gpu_names: tuple[GpuNameRow, ...]
    os_python: tuple[OsPythonRow, ...]
    cpu_bases: tuple[PreferenceRow, ...]
    cuda_os: tuple[PreferenceRow, ...]
    flavors: tuple[FlavorRow, ...]
    pytorch_tags: dict
    build_deps: tuple[BuildDepRow, ...]
    gpu_peaks: tuple[GpuPeakRow, ...] = ()
    uv_python: UvPython | None = None

    # -- lookups (pure, small) -------------------------------------------------------
    def cuda_row(self, cuda: str) -> CudaDriverRow | None:
        return next((r for r in self.cuda_driver if r.cuda == cuda), None)

    def torch_row(self, version: str) -> TorchRow | None:
        return next((r for r in self.torch if r.version == version), None)

    def minor_floor(self, major: int) -> MinorCompatRow | None:
        return next((r for r in self.minor_compat if r.major == major), None)

    def arch_row(self, torch: str, variant: str) -> TorchArchRow | None:
        k = vkey(torch)
        return next(
            (r for r in self.torch_arch
             if r.variant == variant and vkey(r.torch_min) <= k <= vkey(r.torch_max)),
            None,
        )

    def peak_row(self, name: str) -> GpuPeakRow | None:
        n = name.strip().lower()
        return next((r for r in self.gpu_peaks if n in (x.lower() for x in r.names)), None)

    def tag_rows(self, cuda: str) -> tuple[CudaTagRow, ...]:
        return tuple(r for r in self.cuda_tags if r.cuda == cuda)


def _read(name: str) -> dict:
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def load() -> Catalog:
    """Every catalog file, validated (once per catalog version, see catalog.cache); raise on a bad row."""
    from dlbox.catalog.cache import validated

    return validated("catalog", validate)


def validate() -> Catalog:
    """Read and validate every catalog file now; raise on a bad row."""
    images = _read("images.json")
    return parse(Catalog, dict(
        cuda_driver=_read("cuda_driver.json")["rows"],
        driver_branches=_read("driver_branches.json")["rows"],
        minor_compat=_read("minor_compat.json")["rows"],
        torch=_read("torch.json")["rows"],
        torch_arch=_read("torch_arch.json")["rows"],
        cuda_tags=_read("nvidia_cuda_tags.json")["rows"],
        ngc=_read("ngc_pytorch.json")["rows"],
        gpu_names=_read("gpu_names.json")["rows"],
        os_python=images["os_python"],
        cpu_bases=images["cpu_base_preference"],
        cuda_os=images["cuda_os_preference"],
        flavors=images["flavors"],
        pytorch_tags=images["pytorch_pytorch_tags"],
        build_deps=_read("cuda_build_deps.json")["rows"],
        gpu_peaks=_read("gpu_peaks.json")["rows"],
        uv_python=images["uv_python"],
    ))
