"""System (Debian) packages and the C/C++ compiler the project's Python dependencies need.

Inputs: `[env] apt` (the user's own list), `[env] compiler`, and the SystemNeeds the project's
files imply (dlbox.spec.declared: catalog/system_deps.json rows, conda rows, git URLs,
extensions, torch.compile calls). Each package comes with the reason `plan` prints.

The compiler default (measured, benchmarks/results/compiler.json): on Debian bookworm g++ is 35
packages, 246.6 MiB installed, and with the Python headers Inductor includes (python3-dev) 45
packages, 283.3 MiB: a quarter of a 1091 MiB CPU torch image. So dlbox does not ship one to everybody: "auto" adds it when the code calls torch.compile
or a dependency compiles at install time; `compiler = true` always, `compiler = false` never.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbox.spec.declared.system import system_needs

COMPILER = ("g++",)
_COMPILERS = {"g++", "gcc", "make", "build-essential"}


@dataclass(frozen=True)
class SystemPlan:
    apt: tuple[str, ...]
    python_dev: bool              # Python headers: torch.compile's C++ includes Python.h
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]


def python_warning(python: str, declared) -> str | None:
    """The spec's Python against the project's declared range (requires-python, conda, .python-version)."""
    from dlbox.catalog.pythons import choose_python, outside_range

    rng = getattr(declared, "python", None)
    if rng is None or not outside_range(python, rng.specifier):
        return None
    best = choose_python(rng.specifier, where=str(rng.origin))
    fix = f'set [env] python = "{best.python}"' if best.python else (best.refusal or "")
    return f"[env] python {python} is outside the project's range {rng.specifier} ({rng.origin}): {fix}"


def plan_system(user_apt: tuple[str, ...], compiler: bool | str, declared, pip_deps: tuple = ()) -> SystemPlan:
    """`declared`: a dlbox.spec.declared.Declared, or None (nothing read); `pip_deps`: dlbox.toml's
    [env] pip as Deps, which need their system packages as much as the project's own lines."""
    apt: list[str] = list(user_apt)
    reasons: list[str] = []
    warnings: list[str] = []
    python_dev = False
    needs = tuple(getattr(declared, "system", ()) or ())
    needs += tuple(n for n in system_needs(tuple(pip_deps), (), ()) if n.because not in {m.because for m in needs})
    compile_needs = [n for n in needs if n.because == "torch.compile"]
    for n in needs:
        if n.because == "torch.compile" and compiler is False:
            continue
        new = [p for p in n.debian if p not in apt]
        apt += new
        where = f" ({n.origin})" if n.origin else ""
        reasons.append(f"apt {' '.join(n.debian)}: for {n.because}{where}: {n.reason} [{n.source}]")
        if set(n.debian) & _COMPILERS:
            python_dev = True
    if compiler is True and not any(p in apt for p in COMPILER):
        apt += list(COMPILER)
        reasons.append("apt g++ and Python headers: [env] compiler = true (torch.compile and source builds)")
        python_dev = True
    elif compiler is True:
        python_dev = True
    if compiler is False and compile_needs:
        warnings.append(f"torch.compile is called at {compile_needs[0].origin} but [env] compiler = false: it fails "
                        "with InvalidCxxCompiler unless the code falls back (remove the setting to get g++)")
    return SystemPlan(tuple(dict.fromkeys(apt)), python_dev, tuple(reasons), tuple(warnings))
