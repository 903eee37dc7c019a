#!/usr/bin/env python3
"""Print the third-party run-time requirements of the given package directories, one a line.

    requirements.py shared protos services/iam ...

Reads each directory's pyproject.toml and leaves out PhotonCloud's own packages, so an image can
install its dependencies (pinned by constraints.txt) in a layer of their own, before the sources.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

found: set[str] = set()
for directory in sys.argv[1:]:
    with open(Path(directory) / "pyproject.toml", "rb") as f:
        found.update(d for d in tomllib.load(f)["project"].get("dependencies", [])
                     if not d.startswith("photoncloud-"))
print("\n".join(sorted(found)))
