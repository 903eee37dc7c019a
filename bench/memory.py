"""Idle memory of each service process: RSS and PSS after a few seconds of doing nothing.

Starts IAM and the six other services on free 127.0.0.1 ports over a temporary data directory, as
`make run` does (each pointed at IAM and at the services it calls), waits --idle seconds, then reads
each process's RSS and PSS (its proportional share of pages shared with other processes: the
interpreter's and the libraries' code) from /proc/<pid>/smaps_rollup. With --imports it also
reports what importing each service's app module costs on its own (a fresh interpreter, RSS before
and after), the part of the idle figure that is code and module data rather than state.

    .venv/bin/python bench/memory.py                 # about 15 s
    .venv/bin/python bench/memory.py --json --imports

A benchmark, not a test: it asserts nothing, it reports numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from photoncloud.common.testing import start_platform

SERVICES = ("chainfire", "flaredb", "creditservice", "prismnet", "plasmavmc", "k8shost")
MIB = 1024 * 1024


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS of a process in MiB (from /proc/<pid>/smaps_rollup)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) * 1024 / MIB
    return {"rss_mib": round(fields["Rss"], 1), "pss_mib": round(fields["Pss"], 1)}


def import_cost(service: str) -> dict[str, float]:
    """The RSS a fresh interpreter gains by importing the service's app module, in MiB."""
    code = ("import resource, sys\n"
            "def rss():\n"
            "    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()\n"
            "before = rss()\n"
            f"import photoncloud.{service}.app\n"
            "print(before, rss(), len(sys.modules))\n")
    before, after, modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout.split()
    return {"interpreter_mib": round(int(before) / MIB, 1), "imports_mib": round((int(after) - int(before)) / MIB, 1),
            "modules": int(modules)}


def main() -> None:
    """Start the platform, let it idle, print each process's memory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to idle before reading (default 5)")
    parser.add_argument("--imports", action="store_true", help="also measure each app module's imports alone")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="photoncloud-bench-") as root:
        running = start_platform(Path(root), *SERVICES, log_level="INFO")
        try:
            time.sleep(args.idle)
            for name, process in {"iam": running.iam, **running.services}.items():
                assert process.process is not None
                results.append({"service": name, **memory(process.process.pid)})
        finally:
            running.stop()
    if args.imports:
        for r in results:
            r.update(import_cost(r["service"]))
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(), "results": results}, indent=2))
        return
    extra = args.imports
    print("| service | RSS MiB | PSS MiB |" + (" interpreter MiB | app imports MiB | modules |" if extra else ""))
    print("|---|---:|---:|" + ("---:|---:|---:|" if extra else ""))
    for r in results:
        line = f"| {r['service']} | {r['rss_mib']} | {r['pss_mib']} |"
        if extra:
            line += f" {r['interpreter_mib']} | {r['imports_mib']} | {r['modules']} |"
        print(line)


if __name__ == "__main__":
    main()
