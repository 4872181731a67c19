#!/usr/bin/env python3
"""Moves every package to a new version: the workspace's (Cargo.toml, with the crates'
versions of each other), Cargo.lock, the npm packages (node/package.json, node/npm/*, and the
version node/index.js checks its platform package against), the C header's defines
(regenerated from the crate's version), and a CHANGELOG.md entry to fill in. Then checks
that they agree (scripts/check-versions.py). Usage: scripts/set-version.py 0.6.0"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    if len(sys.argv) != 2 or not re.fullmatch(r"\d+\.\d+\.\d+", sys.argv[1]):
        print(__doc__, file=sys.stderr)
        return 2
    new = sys.argv[1]
    cargo = ROOT / "Cargo.toml"
    text = cargo.read_text()
    old = re.search(r'^version = "([^"]+)"', text, re.M).group(1)
    text = re.sub(r'^version = "[^"]+"', f'version = "{new}"', text, count=1, flags=re.M)
    text = re.sub(r'(\{ version = ")[^"]+(", path = )', rf"\g<1>{new}\g<2>", text)
    cargo.write_text(text)

    for path in [ROOT / "node/package.json", *sorted((ROOT / "node/npm").glob("*/package.json"))]:
        package = json.loads(path.read_text())
        package["version"] = new
        path.write_text(json.dumps(package, indent=2, ensure_ascii=False) + "\n")
    index = ROOT / "node/index.js"
    index.write_text(index.read_text().replace(f"'{old}'", f"'{new}'").replace(f"expected {old} but", f"expected {new} but"))

    changelog = ROOT / "CHANGELOG.md"
    text = changelog.read_text()
    if f"## [{new}]" not in text:
        text = text.replace("\n## [", f"\n## [{new}] - unreleased\n\n### Changed\n\n- (what changed)\n\n## [", 1)
        changelog.write_text(text)

    subprocess.run(["cargo", "update", "--workspace", "--offline"], cwd=ROOT, check=True)
    env = dict(os.environ, UPDATE_HEADER="1")
    subprocess.run(["cargo", "test", "-q", "-p", "almost-raft-ffi", "--test", "header"], cwd=ROOT, env=env, check=True)
    return subprocess.run([sys.executable, str(ROOT / "scripts/check-versions.py")]).returncode


if __name__ == "__main__":
    sys.exit(main())
