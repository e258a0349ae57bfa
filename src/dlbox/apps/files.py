"""Write generated files (devcontainer.json, compose.yaml) without silently overwriting a user's.

- devcontainer.json is MERGED: the user's own keys are kept (`render.devcontainer.merge`),
  comments and trailing commas are accepted on reading (JSONC), and the old file is kept as
  `devcontainer.json.dlbox-bak-TIMESTAMP` whenever its content changes.
- compose.yaml is REPLACED only with `--force` (and then backed up the same way): dlbox has no
  YAML parser (PyYAML is not a dependency), so it cannot merge a user's YAML faithfully.
An unchanged file is not rewritten and gets no backup.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dlbox.engine.run import ca_for
from dlbox.engine.stage import stage_project
from dlbox.errors import HostError
from dlbox.plan.layout import image_name
from dlbox.render.compose import render_compose
from dlbox.render.devcontainer import devcontainer_dict, merge, parse_jsonc, to_json
from dlbox.workflow import Project

DEVCONTAINER = Path(".devcontainer") / "devcontainer.json"
COMPOSE = Path("compose.yaml")


@dataclass(frozen=True)
class Written:
    path: Path
    action: str                 # "created", "merged", "replaced" or "unchanged"
    backup: Path | None = None


def backup_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.dlbox-bak-{stamp}")
    n = 1
    while candidate.exists():       # two runs in one second keep both backups
        candidate = path.with_name(f"{path.name}.dlbox-bak-{stamp}-{n}")
        n += 1
    return candidate


def _write(path: Path, text: str, *, old: str | None, action: str) -> Written:
    if old == text:
        return Written(path, "unchanged")
    backup = None
    if old is not None:
        backup = backup_path(path)
        backup.write_text(old)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return Written(path, action if old is not None else "created", backup)


def env_image_tag(p: Project) -> str:
    """The tag `dlbox build` gives this project's environment (staging computes it; no Docker).
    Staging also writes `.dlbox/Dockerfile`, which the dev container and compose build from."""
    staged = stage_project(p.plan)
    return f"{image_name(p.plan)}:{staged.fingerprint[:12]}"


def write_devcontainer(p: Project, *, image: str | None = None) -> Written:
    """`.devcontainer/devcontainer.json` for the project, merged into an existing one.

    IMAGE: use that image; None: build from the rendered `.dlbox/Dockerfile`."""
    env_image_tag(p)     # stage: the Dockerfile the file refers to must exist
    ours = devcontainer_dict(p.plan, image=image, ca_bundle=ca_for(p.plan))
    path = p.spec.project_dir / DEVCONTAINER
    old = path.read_text() if path.exists() else None
    data = ours
    if old is not None:
        try:
            data = merge(parse_jsonc(old), ours)
        except ValueError as exc:
            raise HostError(f"cannot merge into {path}: {exc}",
                            fix="fix that file, or move it away and run `dlbox devcontainer` again") from None
    return _write(path, to_json(data), old=old, action="merged")


def write_compose(p: Project, *, force: bool = False) -> Written:
    """`compose.yaml` for the project. An existing, different file is replaced only with FORCE."""
    image = env_image_tag(p)
    text = render_compose(p.plan, image=image, ca_bundle=ca_for(p.plan), spec_file=p.spec_file)
    path = p.spec.project_dir / COMPOSE
    old = path.read_text() if path.exists() else None
    if old is not None and old != text and not force:
        raise HostError(f"{path} exists and differs from what dlbox would write; dlbox does not merge YAML",
                        fix="dlbox compose --force   (replaces it and keeps the old one as compose.yaml.dlbox-bak-TIME)")
    return _write(path, text, old=old, action="replaced")
