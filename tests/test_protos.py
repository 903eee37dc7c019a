"""The generated gRPC modules are exactly what the .proto files compile to (run `make protos`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PROTOS = Path(__file__).resolve().parents[1] / "protos"


def load_generator():
    spec = importlib.util.spec_from_file_location("generate_protos", PROTOS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for pattern in ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")
        for p in root.glob(f"photoncloud/**/{pattern}")
    }


def test_generated_code_is_fresh(tmp_path):
    load_generator().generate(tmp_path)
    fresh, committed = generated(tmp_path), generated(PROTOS)
    assert fresh, "no .proto file compiled"
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"stale or orphaned generated files (run `make protos`): {stale}"
