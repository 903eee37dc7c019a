"""Compile every .proto under this folder into Python modules beside it (`make protos`)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from google.api import http_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent


def proto_files() -> list[Path]:
    """Every .proto file of the contract, relative to the protos folder."""
    return sorted(p.relative_to(ROOT) for p in ROOT.glob("photoncloud/**/*.proto"))


def generate(out_dir: Path = ROOT) -> None:
    """Write the *_pb2.py, *_pb2.pyi and *_pb2_grpc.py modules into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"--proto_path={ROOT}",
        f"--proto_path={resources.files('grpc_tools') / '_proto'}",  # the well-known types
        f"--proto_path={Path(http_pb2.__file__).parents[2]}",  # google/api: http rules, field behavior
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(ROOT / p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
