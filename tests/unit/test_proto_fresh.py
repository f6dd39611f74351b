"""The committed generated code in tristore/pb is what proto/ generates today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PB = ROOT / "tristore" / "pb"
REGEN = "python scripts/gen_protos.py (with the pinned grpcio-tools of pyproject.toml)"


def _files(base: Path, under: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(base)): p
        for p in under.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"
    }


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    fresh = _files(tmp_path, tmp_path)
    committed = _files(ROOT, PB)
    assert fresh, "gen_protos.py generated nothing"
    missing = sorted(set(fresh) - set(committed))
    extra = sorted(set(committed) - set(fresh))
    assert not missing, f"generated files not committed: {missing}; run {REGEN}"
    assert not extra, f"committed files no .proto generates: {extra}; delete them and run {REGEN}"
    stale = sorted(
        name for name, p in fresh.items() if p.read_bytes() != committed[name].read_bytes()
    )
    assert not stale, f"generated code is out of date: {stale}; run {REGEN}"


def test_every_proto_has_generated_modules() -> None:
    protos = sorted((ROOT / "proto").rglob("*.proto"))
    assert protos
    for proto in protos:
        stem = proto.relative_to(ROOT / "proto").with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert (ROOT / f"{stem}{suffix}").is_file(), f"{stem}{suffix} is missing"
    assert (PB / "__init__.py").is_file()
