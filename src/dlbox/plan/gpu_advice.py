"""What to say when the GPU decision cannot be made: the nearest setting that works.

Pure, like plan/gpu.py: every suggestion is computed from the catalog rows it names, so a
refusal can be checked the same way a decision can.
"""

from __future__ import annotations

from dlbox.catalog import Catalog, load, vkey
from dlbox.catalog.pythons import providable
from dlbox.errors import PlanError
from dlbox.host.nvidia_smi import is_l4t_driver
from dlbox.plan.gpu_rules import candidates, covers, cuda_tag, devel_ok, driver_for, full_driver, py_ok, windows_driver

JETSON_ROUTE = ("use NVIDIA's L4T containers as the base (base = \"nvcr.io/nvidia/l4t-jetpack:<your L4T release, "
                "see /etc/nv_tegra_release>\", or dusty-nv/jetson-containers images) with torch = \"none\", "
                "or gpu = false for CPU wheels")


def _newest_first(rows):
    return sorted(rows, key=lambda r: vkey(r.version), reverse=True)


def _nearest_first(rows, pinned: str | None):
    if not pinned:
        return _newest_first(rows)
    # nearest by position among the catalogued releases (2.9.1 before 2.9.0 for a pin of 2.14.1;
    # 1.12.1 before 1.11.0 for a pin of 2.0.1), the newer one on a tie
    order = sorted({r.version for r in load().torch} | {pinned}, key=vkey)
    at = {v: i for i, v in enumerate(order)}
    return sorted(rows, key=lambda r: (abs(at[r.version] - at[pinned]), at[r.version] < at[pinned]))


def _nearest_python(pythons, py: str):
    """Providable Pythons, nearest to `py` first (the newer on a tie)."""
    return sorted(pythons, key=lambda x: (abs(vkey(x)[1] - vkey(py)[1]), -vkey(x)[1]))


def refuse_aarch64(driver, req) -> None:
    cat = load()
    name = next((g.name for g in driver.gpus), "this GPU")
    major = int(driver.driver_version.split(".")[0]) if driver.driver_version else 0
    ngc = [r for r in cat.ngc if r.min_driver_branch and r.min_driver_branch <= major]
    newest = max(ngc, key=lambda r: r.container) if ngc else None
    hint = f" (the newest whose driver floor this driver meets: {newest.image} [ngc_pytorch.json {newest.container}])" \
        if newest else ""
    raise PlanError(
        f"{name} runs on an aarch64 host ({driver.arch_from}): dlbox's catalog has no sourced rows for torch's "
        "aarch64 CUDA wheels (their architecture lists differ from the x86_64 wheels'), so it will not guess one",
        fix=f"use an NVIDIA NGC PyTorch container as the base: base = \"nvcr.io/nvidia/pytorch:<YY.MM>-py3\"{hint} "
            "with torch = \"none\" (check that its tag has a linux/arm64 image), or gpu = false for CPU wheels",
    )


def refuse_jetson(driver) -> None:
    name = next((g.name for g in driver.gpus), "this board")
    if driver.problem == "tegrastats":
        drv = "seen in tegrastats"
    elif driver.driver_version and is_l4t_driver(driver.driver_version):
        drv = f"L4T driver {driver.driver_version}"
    else:
        # Thor on JetPack 7 reports an ordinary driver number (595.78, rbonghi/jetson_stats#885), or none
        # at all when the paste hides it: do not call that an L4T branch.
        drv = f"driver {driver.driver_version}" if driver.driver_version else "the paste names no driver"
        raise PlanError(
            f"{name} is a Jetson module ({drv}): an integrated GPU on an aarch64 host, and dlbox's catalog has no "
            "sourced rows for torch's aarch64 CUDA wheels (their architecture lists differ from the x86_64 "
            "wheels'), so it will not guess one", fix=JETSON_ROUTE)
    raise PlanError(
        f"{name} is a Jetson ({drv}): its driver is not a desktop/data-center "
        "branch and PyPI/download.pytorch.org CUDA wheels are not built for its integrated GPU",
        fix=JETSON_ROUTE)


def refuse_devel(cat: Catalog, req, driver, cuda_max, caps) -> None:
    """flavor=devel (or a CUDA-compiling dependency) needs nvcc; say which torch gets one here."""
    rows = [r for r in _newest_first(cat.torch) if py_ok(r, req.python)]
    ok = next((c for c in candidates(cat, rows, "auto", driver, cuda_max, caps) if devel_ok(cat, c, req.python)), None)
    what = f"torch {req.torch}" if req.torch != "auto" else f"torch for Python {req.python}"
    if req.cuda != "auto":
        what += f" with CUDA {req.cuda}"
    unpin = 'cuda = "auto", ' if req.cuda != "auto" else ""
    fix = (f'{unpin}torch = "{ok.row.version}" ({ok.variant.name}: nvidia/cuda devel images for CUDA {ok.variant.cuda} '
           f"start on this driver) [torch.json {ok.row.version}]" if ok else "")
    if ok is None:
        for py in _nearest_python(providable(cat), req.python):
            rows = [r for r in _newest_first(cat.torch) if py_ok(r, py)]
            ok = next((c for c in candidates(cat, rows, "auto", driver, cuda_max, caps) if devel_ok(cat, c, py)), None)
            if ok:
                fix = (f'python = "{py}" with torch = "{ok.row.version}" ({ok.variant.name}: nvidia/cuda devel images '
                       f"for CUDA {ok.variant.cuda} start on this driver) [torch.json {ok.row.version}]")
                break
    fix = fix or "no catalogued torch for any Python dlbox provides has a devel image this driver starts"
    need = _devel_driver(cat, req.python, windows_driver(driver), req, caps)
    if need:
        fix += f"; or a driver >= {need[0]} starts {need[1]}"
    raise PlanError(
        f"{what} needs nvcc (flavor = \"devel\" or a CUDA-compiling dependency), i.e. an nvidia/cuda devel image "
        f"whose CUDA driver {driver.driver_version} accepts (<= {cuda_max}); none serves this torch's wheels",
        fix=fix + ("" if need else "; or upgrade the driver") + "; or flavor = \"runtime\" without CUDA-compiling "
                                                                 "dependencies")


def _mixed_advice(cat: Catalog, req, driver, cuda_max) -> str:
    """For rigs whose GPUs no single wheel covers: name each GPU and a wheel for it."""
    parts = []
    for g in driver.gpus:
        if not g.compute_cap:
            continue
        rows = [r for r in _newest_first(cat.torch) if py_ok(r, req.python)]
        c = next(iter(candidates(cat, rows, "auto", driver, cuda_max, [g.compute_cap])), None)
        if c:
            label = g.compute_cap if g.name.startswith("GPU ") else f"{g.name}, {g.compute_cap}"
            parts.append(f'GPU {g.index} ({label}): [run] gpus = "device={g.index}" '
                         f"(CUDA_VISIBLE_DEVICES={g.index}) with torch {c.row.version}+{c.variant.name}")
    return "no single wheel covers every GPU here; choose: " + "; ".join(parts) if parts else ""


def refuse_arch(cat: Catalog, req, driver, cuda_max, caps, refused) -> None:
    version, variant, bad = refused[0]
    pinned = req.torch if req.torch not in ("auto", "none") else None
    rows = [r for r in _nearest_first(cat.torch, pinned) if py_ok(r, req.python)]
    works = []
    if req.cuda == "auto":
        found = candidates(cat, rows, "auto", driver, cuda_max, caps, experimental=True)
    else:
        # a CUDA pin: the CUDA nearest to it first (cu118 for an H100 asked 11.7), then the torch order
        asked = vkey(req.cuda)
        cudas = sorted({v.cuda for r in rows for v in r.variants if v.cuda and v.status == "verified"},
                       key=lambda cu: (abs((vkey(cu)[0] - asked[0]) * 100 + vkey(cu)[1] - asked[1]), vkey(cu) < asked))
        found = []
        for cu in cudas:
            found += candidates(cat, rows, cu, driver, cuda_max, caps)
            if len(found) >= 3:
                break
    for c in found:
        label = f"torch {c.row.version}+{c.variant.name}"
        if c.variant.stable is False:
            label += f' (experimental in PyTorch\'s release matrix: cuda = "{c.variant.cuda}")'
        elif req.cuda != "auto":
            label += f' (cuda = "{c.variant.cuda}")'
        if label not in works:
            works.append(label)
    fix = ("use " + ", or ".join(works[:3]) + (" (nearest to the pin first)" if pinned else "")) if works else ""
    upgrade = _upgrade_for_pin(cat, req, caps, cuda_max, windows_driver(driver))
    if upgrade:
        fix = (fix + "; or " if fix else "") + upgrade
    if not works and len(set(caps)) > 1:
        fix = _mixed_advice(cat, req, driver, cuda_max)
    if not fix and not _uncovered(cat, caps):
        for py in _nearest_python(providable(cat), req.python):
            rows = [r for r in _nearest_first(cat.torch, pinned) if py_ok(r, py)]
            c = next(iter(candidates(cat, rows, "auto", driver, cuda_max, caps)), None)
            if c:
                fix = (f'no catalogued torch for Python {req.python} has them; python = "{py}" gives torch '
                       f"{c.row.version}+{c.variant.name} [torch.json {c.row.version}]")
                break
    if not fix:
        none = _uncovered(cat, caps)
        fix = (f"no catalogued torch CUDA wheel has kernels for compute capability {', '.join(none)} on any driver: "
               "gpu = false for CPU wheels" if none else
               "no catalogued torch has kernels for this GPU on this driver; upgrade the driver")
    lacks = {v: sorted(set(b)) for ver, v, b in refused if ver == version}
    if len(set(caps)) > 1 and len(lacks) > 1:
        # a mixed rig: say what each wheel of this release lacks, not only the first one tried
        what = "; ".join(f"+{v} lacks {', '.join(b)}" for v, b in lacks.items())
        raise PlanError(
            f"no wheel of torch {version} has kernels for every GPU here (compute capability "
            f"{', '.join(sorted(set(caps), key=vkey))}): {what} [torch_arch.json]", fix=fix)
    raise PlanError(
        f"GPU compute capability {', '.join(sorted(set(bad)))} has no kernels in torch {version}+{variant} "
        "[torch_arch.json] (it would fail inside with 'no kernel image is available for execution on the device')",
        fix=fix)


def _uncovered(cat: Catalog, caps) -> list[str]:
    """Compute capabilities no verified CUDA wheel of any catalogued torch has kernels for (Kepler 3.0/3.5)."""
    out = []
    for c in sorted(set(caps)):
        if not any(v.cuda and v.status == "verified" and (a := cat.arch_row(r.version, v.name))
                   and covers(a.archs, a.ptx, c) for r in cat.torch for v in r.variants):
            out.append(c)
    return out


def _devel_driver(cat: Catalog, py: str, windows: bool = False, req=None, caps=()):
    """(driver, what) for the lowest driver that starts a devel image matching a torch wheel for `py`
    (of the pinned torch / CUDA when there is a pin) whose kernels cover `caps`."""
    best = None
    for row in _newest_first(cat.torch):
        if not py_ok(row, py) or (req is not None and req.torch not in ("auto", "none") and row.version != req.torch):
            continue
        for v in row.variants:
            if req is not None and req.cuda != "auto" and v.cuda != req.cuda:
                continue
            arch = v.cuda and cat.arch_row(row.version, v.name)
            if caps and not (arch and all(covers(arch.archs, arch.ptx, c) for c in caps)):
                continue
            need = v.cuda and full_driver(cat, v.cuda, windows)
            if not need or v.status != "verified" or v.stable is False:
                continue
            tag = cuda_tag(cat, v.cuda, py, True)
            if tag and (best is None or vkey(need) < vkey(best[0])):
                best = (need, f"{tag[0]} for torch {row.version}+{v.name} [cuda_driver.json {v.cuda}]")
    return best


def _upgrade_for_pin(cat: Catalog, req, caps, cuda_max, windows: bool = False) -> str:
    """For a pinned torch: the driver that would run a variant of it whose kernels cover these GPUs."""
    row = cat.torch_row(req.torch) if req.torch not in ("auto", "none") else None
    if row is None:
        return ""
    for v in sorted(row.variants, key=lambda v: vkey(v.cuda) if v.cuda else (), reverse=False):
        arch = v.cuda and cat.arch_row(row.version, v.name)
        if not arch or v.status != "verified" or vkey(v.cuda) <= vkey(cuda_max):
            continue
        if (req.cuda == "auto" or req.cuda == v.cuda) and all(covers(arch.archs, arch.ptx, c) for c in caps):
            d = driver_for(cat, v.cuda, windows)
            if d:
                return f"upgrade the driver to >= {d} for torch {row.version}+{v.name} [cuda_driver.json {v.cuda}]"
    return ""


def _unlocking_driver(cat: Catalog, py: str, caps, windows: bool = False) -> tuple[str, str] | None:
    """(driver, 'torch X+cuYY') for the lowest driver that runs some wheel for this Python and GPUs."""
    best = None
    for row in cat.torch:
        if not py_ok(row, py):
            continue
        for v in row.variants:
            arch = v.cuda and cat.arch_row(row.version, v.name)
            if not v.cuda or v.status != "verified" or v.stable is False or not arch:
                continue
            if not all(covers(arch.archs, arch.ptx, c) for c in caps):
                continue
            d = driver_for(cat, v.cuda, windows)
            # the lowest driver; at that driver, the newest torch it unlocks
            if d and (best is None or (vkey(d), [-x for x in vkey(row.version)])
                      < (vkey(best[0]), [-x for x in vkey(best[2])])):
                full = full_driver(cat, v.cuda, windows)
                note = f" (minor-version compatibility; full CUDA {v.cuda} from {full})" if full and full != d else ""
                best = (d, f"torch {row.version}+{v.name}{note} [cuda_driver.json {v.cuda}]", row.version)
    return (best[0], best[1]) if best else None


def refuse_driver(cat: Catalog, req, driver, cuda_max, caps) -> None:
    """No wheel runs on this (old) driver: the driver that unlocks one, and a Python that works now."""
    if req.torch not in ("auto", "none") and cat.torch_row(req.torch) is None:
        near = [r.version for r in _nearest_first(cat.torch, req.torch) if py_ok(r, req.python)][:2]
        raise PlanError(f"torch {req.torch} is not in the catalog [torch.json]",
                        fix=(f"the nearest catalogued releases for Python {req.python}: {', '.join(near)}; " if near
                             else "") + "run `dlbox catalog` for the known versions, or put its wheel in find_links")
    asked = cat.torch_row(req.torch) if req.torch not in ("auto", "none") else None
    what = f"torch {req.torch}" if asked else f"torch for Python {req.python}"
    if req.cuda != "auto":
        what += f" with CUDA {req.cuda}"
    need = ""
    win = windows_driver(driver)
    cuda_covers = req.cuda == "auto" or not caps or any(
        v.cuda == req.cuda and v.status == "verified" and (a := cat.arch_row(r.version, v.name))
        and all(covers(a.archs, a.ptx, c) for c in caps) for r in cat.torch for v in r.variants)
    if not cuda_covers:
        what += (f" (no torch wheel for CUDA {req.cuda} has kernels for compute capability "
                 f"{', '.join(sorted(set(caps), key=vkey))} [torch_arch.json], on any driver)")
    elif req.cuda != "auto" and cat.cuda_row(req.cuda) and full_driver(cat, req.cuda, win):
        full, low = full_driver(cat, req.cuda, win), driver_for(cat, req.cuda, win)
        note = f" (minor-version compatibility; full CUDA {req.cuda} from {full})" if low and low != full else ""
        need = f"driver >= {low or full}{note} for CUDA {req.cuda} [cuda_driver.json {req.cuda}]"
    elif asked:
        def runs_here(v) -> bool:  # its kernels cover these GPUs (a K80 gains nothing from torch 2.11's cu126)
            arch = cat.arch_row(asked.version, v.name)
            return not caps or bool(arch and all(covers(arch.archs, arch.ptx, c) for c in caps))
        ds = [(vkey(d), d, v) for v in asked.variants
              if v.cuda and runs_here(v) and (d := driver_for(cat, v.cuda, win))]
        if ds:
            _, d, v = min(ds, key=lambda x: x[0])
            need = f"driver >= {d} for {v.name} [cuda_driver.json {v.cuda}]"
        elif any(v.cuda for v in asked.variants):
            what += f" (no wheel of it has kernels for compute capability {', '.join(sorted(set(caps), key=vkey))} " \
                    "[torch_arch.json], on any driver)"
    pythons = providable(cat)
    here = []
    pinned = req.torch if asked else None
    same = [r for r in _nearest_first(cat.torch, pinned) if py_ok(r, req.python)]
    c = next(iter(candidates(cat, same, "auto", driver, cuda_max, caps)), None) if (asked or req.cuda != "auto") else None
    if c:
        setting = (f'torch = "{c.row.version}"' if asked else "") + (", " if asked and req.cuda != "auto" else "") \
            + ('cuda = "auto"' if req.cuda != "auto" else "")
        here.append(f"{setting} gives torch {c.row.version}+{c.variant.name} on this driver"
                    + (" (nearest to the pin)" if asked else "") + f" [torch.json {c.row.version}]")
    for py in ([] if here else _nearest_python(pythons, req.python)):
        rows = [r for r in _nearest_first(cat.torch, pinned) if py_ok(r, py)]
        c = next(iter(candidates(cat, rows, "auto", driver, cuda_max, caps)), None)
        if c:
            here.append(f'python = "{py}" gives torch {c.row.version}+{c.variant.name} [torch.json {c.row.version}]')
            break
    unlock = _unlocking_driver(cat, req.python, caps, windows_driver(driver))
    fixes = []
    if need:
        fixes.append(f"upgrade to {need}")
    elif unlock:
        fixes.append(f"a driver >= {unlock[0]} unlocks {unlock[1]} for Python {req.python}")
    fixes += here
    fix = "; or ".join(fixes)
    none = _uncovered(cat, caps)
    if not here and not unlock and none:
        raise PlanError(f"{what} cannot run on driver {driver.driver_version} (CUDA <= {cuda_max})",
                        fix=f"no catalogued torch CUDA wheel has kernels for compute capability {', '.join(none)} "
                            "on any driver: gpu = false for CPU wheels")
    if not here:
        fix += ("; " if fix else "") + (f"no Python dlbox provides ({', '.join(sorted(pythons, key=vkey))}) has a CUDA "
                                        "wheel that runs on this driver: upgrade the driver, or gpu = false for CPU wheels")
    raise PlanError(f"{what} cannot run on driver {driver.driver_version} (CUDA <= {cuda_max})", fix=fix)


def refuse_old_driver(cat: Catalog, req, driver, caps) -> None:
    """A driver older than every branch in the catalog (R3xx before R384): no CUDA wheel runs on it,
    so say which driver unlocks one for this Python and these GPUs, as refuse_driver does for R384+."""
    oldest = min(cat.driver_branches, key=lambda r: r.branch)
    what = f"torch {req.torch}" if req.torch not in ("auto", "none") else f"torch for Python {req.python}"
    unlock = _unlocking_driver(cat, req.python, caps, windows_driver(driver))
    fix = (f"a driver >= {unlock[0]} unlocks {unlock[1]} for Python {req.python}" if unlock else
           f"no catalogued torch CUDA wheel for Python {req.python} has kernels for compute capability "
           f"{', '.join(sorted(set(caps)))}")
    raise PlanError(f"{what} cannot run on driver {driver.driver_version}: it is older than R{oldest.branch} "
                    f"(CUDA {oldest.cuda_max}), the oldest driver branch in dlbox's catalog, and no torch CUDA wheel "
                    f"runs on it [driver_branches.json {oldest.branch}]",
                    fix=fix + "; or gpu = false for CPU wheels")
