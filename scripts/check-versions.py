#!/usr/bin/env python3
"""Every package says the workspace's version (Cargo.toml, [workspace.package]): the crates,
Cargo.lock, the C header's version defines, the npm packages (and the version the loader
expects of its platform package), the Python package (maturin takes the crate's version),
and the newest entry of CHANGELOG.md. scripts/set-version.py moves them all. Prints what disagrees and exits 1. Called by `make test`."""

from __future__ import annotations

import json
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    version = workspace["workspace"]["package"]["version"]
    found: list[tuple[str, str]] = []

    members = workspace["workspace"]["members"]
    names = []
    for member in members:
        package = tomllib.loads((ROOT / member / "Cargo.toml").read_text())["package"]
        names.append(package["name"])
        v = package["version"]
        found.append((f"{member}/Cargo.toml", version if v == {"workspace": True} else str(v)))
    for name, dep in workspace["workspace"].get("dependencies", {}).items():
        if isinstance(dep, dict) and "path" in dep:
            found.append((f"Cargo.toml [workspace.dependencies] {name}", dep.get("version", "missing")))
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    for package in lock["package"]:
        if package["name"] in names and "source" not in package:
            found.append((f"Cargo.lock ({package['name']})", package["version"]))

    header = (ROOT / "include/almost_raft.h").read_text()
    parts = [re.search(rf"#define ALMOST_RAFT_VERSION_{name} (\d+)", header) for name in ("MAJOR", "MINOR", "PATCH")]
    found.append(("almost_raft.h VERSION_MAJOR.MINOR.PATCH", ".".join(m.group(1) if m else "missing" for m in parts)))
    m = re.search(r'#define ALMOST_RAFT_VERSION "([^"]+)"', header)
    found.append(("almost_raft.h ALMOST_RAFT_VERSION", m.group(1) if m else "missing"))

    pyproject = tomllib.loads((ROOT / "python/pyproject.toml").read_text())
    if "version" in pyproject["project"].get("dynamic", []):
        found.append(("python/pyproject.toml (from python/Cargo.toml)", version))
    else:
        found.append(("python/pyproject.toml", pyproject["project"].get("version", "missing")))

    for path in [ROOT / "node/package.json", *sorted((ROOT / "node/npm").glob("*/package.json"))]:
        package = json.loads(path.read_text())
        found.append((str(path.relative_to(ROOT)), package["version"]))
        for dep, v in package.get("optionalDependencies", {}).items():
            found.append((f"{path.relative_to(ROOT)} optionalDependencies {dep}", v))

    index = (ROOT / "node/index.js").read_text()
    for v in sorted(set(re.findall(r"bindingPackageVersion !== '([^']+)'", index))):
        found.append(("node/index.js (the platform package it expects)", v))

    m = re.search(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    found.append(("CHANGELOG.md (newest entry)", m.group(1) if m else "missing"))

    wrong = [(where, v) for where, v in found if v != version]
    for where, v in wrong:
        print(f"{where}: {v}, not the workspace's {version}", file=sys.stderr)
    if not wrong:
        print(f"versions agree: {version} in {len(found)} places")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
