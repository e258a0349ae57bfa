#!/usr/bin/env python3
"""Run at image build time, after the project's editable install built its extensions in the
(throw-away) build context: copy the compiled files into the image and let Python find them.

    python collect_ext.py SOURCE_ROOT EXT_DIR STAMP

Every *.so under SOURCE_ROOT newer than STAMP (outside build/ and .git/) is copied to the same
relative path under EXT_DIR; EXT_DIR/map.json maps module names to them, and a fallback import
finder (site-packages/_dlbox_ext.py, loaded by _dlbox_ext.pth) serves them when the bind-mounted
source tree has none. A .so the user built in place in the project still wins (it comes first).
"""

import json
import os
import shutil
import sys
import sysconfig

FINDER = '''"""dlbox: serve the project's compiled extensions from the image (see /opt/dlbox/ext/map.json)."""
import importlib.abc, importlib.machinery, importlib.util, json, os, sys

try:
    with open(%r) as _f:
        _MAP = json.load(_f)
except OSError:
    _MAP = {}


class _DlboxExtFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        f = _MAP.get(fullname)
        if f and os.path.exists(f):
            return importlib.util.spec_from_file_location(
                fullname, f, loader=importlib.machinery.ExtensionFileLoader(fullname, f))
        return None


if not any(type(f).__name__ == "_DlboxExtFinder" for f in sys.meta_path):
    sys.meta_path.append(_DlboxExtFinder())
'''


def main():
    root, ext_dir, stamp = sys.argv[1], sys.argv[2], sys.argv[3]
    since = os.stat(stamp).st_mtime
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir.split(os.sep)[0] in ("build", ".git", ".dlbox", ".venv", "venv"):
            dirnames[:] = []
            continue
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not name.endswith(".so") or os.path.getmtime(path) < since:
                continue
            rel = os.path.relpath(path, root)
            dst = os.path.join(ext_dir, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(path, dst)
            parts = rel.split(os.sep)
            if parts[0] == "src" and len(parts) > 1:
                parts = parts[1:]
            module = ".".join(parts[:-1] + [parts[-1].split(".")[0]])
            found[module] = dst
    os.makedirs(ext_dir, exist_ok=True)
    map_file = os.path.join(ext_dir, "map.json")
    with open(map_file, "w") as f:
        json.dump(found, f, indent=1, sort_keys=True)
    site = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site, "_dlbox_ext.py"), "w") as f:
        f.write(FINDER % map_file)
    with open(os.path.join(site, "_dlbox_ext.pth"), "w") as f:
        f.write("import _dlbox_ext\n")
    for module, dst in sorted(found.items()):
        print(f"dlbox: compiled extension {module} -> {dst}")
    if not found:
        print("dlbox: the package built no compiled extension here (setup.py may skip them without CUDA)")


if __name__ == "__main__":
    main()
