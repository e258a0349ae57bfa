"""`dlbox catalog` (alias `images`): what dlbox knows about drivers, CUDA, torch and NGC."""

from __future__ import annotations

import json

import typer
from rich.console import Console


def _rows(driver: str | None) -> dict:
    from dlbox.catalog import load, vkey
    from dlbox.host.nvidia_smi import cuda_max_for_driver

    cat = load()
    cuda_max = cuda_max_for_driver(driver) if driver else None

    def runs(cuda: str | None) -> bool:
        if driver is None or cuda is None:
            return True
        if cuda_max and vkey(cuda) <= vkey(cuda_max):
            return True
        floor = cat.minor_floor(int(cuda.split(".")[0]))
        return bool(cuda_max and floor and cuda.split(".")[0] == cuda_max.split(".")[0]
                    and vkey(driver) >= vkey(floor.floor_linux))

    torch = [{"version": r.version, "python": f"{r.python_min}-{r.python_max}",
              "variants": [v.name for v in r.variants if runs(v.cuda)],
              "experimental": [v.name for v in r.variants if runs(v.cuda) and (v.stable is False or v.status != "verified")],
              "status": r.status}
             for r in sorted(cat.torch, key=lambda r: vkey(r.version), reverse=True)]
    torch = [t for t in torch if any(v != "cpu" for v in t["variants"]) or driver is None]
    cuda = [{"cuda": r.cuda, "toolkit_exists": r.toolkit_exists, "min_driver_linux": r.min_driver_linux,
             "minor_compat_floor_linux": r.minor_compat_floor_linux, "status": r.status}
            for r in cat.cuda_driver if runs(r.cuda)]
    ngc = [{"container": r.container, "image": r.image, "pytorch": r.pytorch, "cuda": r.cuda,
            "python": r.python, "min_driver": r.min_driver}
           for r in cat.ngc if driver is None or (r.min_driver_branch or 0) <= int(driver.split(".")[0])]
    return {"driver": driver, "driver_cuda_max": cuda_max, "torch": torch, "cuda_driver": cuda, "ngc_pytorch": ngc}


def catalog(
    driver: str = typer.Option(None, "--driver", help="Only what this driver (e.g. 535.104.05) can run."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List torch versions and wheel variants, CUDA <-> driver rows and NGC PyTorch releases."""
    from rich.table import Table

    data = _rows(driver)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    con = Console()
    if driver:
        con.print(f"driver [bold]{driver}[/bold] reports CUDA <= {data['driver_cuda_max']}")
    t = Table(title="torch wheels (download.pytorch.org/whl/<variant>)", box=None)
    for col in ("torch", "python", "variants", "status"):
        t.add_column(col)
    for r in data["torch"]:
        t.add_row(r["version"], r["python"], " ".join(v + ("*" if v in r["experimental"] else "") for v in r["variants"]),
                  r["status"])
    con.print(t)
    con.print("[dim]* experimental in PyTorch's release matrix or not verified: chosen only when asked (cuda = \"X.Y\")[/dim]")
    c = Table(title="CUDA toolkit -> minimum Linux driver", box=None)
    for col in ("cuda", "full support", "minor-compat floor", "status"):
        c.add_column(col)
    for r in data["cuda_driver"]:
        c.add_row(r["cuda"] + ("" if r["toolkit_exists"] else " (no toolkit)"), r["min_driver_linux"] or "-",
                  r["minor_compat_floor_linux"] or "-", r["status"])
    con.print(c)
    n = Table(title="NGC PyTorch containers", box=None)
    for col in ("image", "pytorch", "cuda", "python", "min driver"):
        n.add_column(col)
    for r in data["ngc_pytorch"]:
        n.add_row(r["image"], r["pytorch"], r["cuda"], r["python"], r["min_driver"])
    con.print(n)


def register(app: typer.Typer) -> None:
    app.command("catalog")(catalog)
    app.command("images", hidden=True)(catalog)
