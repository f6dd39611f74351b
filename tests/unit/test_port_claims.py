"""The port blocks test workers start clusters on: recorded, so that no two
workers (or runs) pick overlapping blocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration import cluster
from tests.integration.cluster import PORTS_PER_CLUSTER, PortClaim

pytestmark = pytest.mark.unit


@pytest.fixture
def claims_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cluster, "CLAIMS_DIR", tmp_path / "claims")
    return tmp_path / "claims"


def test_blocks_overlap_where_any_of_their_port_ranges_do() -> None:
    a = PortClaim(20_000, 1, 1, 0.0)
    # Internal ports (base + 1000) of one are the gRPC ports of a block 1000 above it.
    assert a.overlaps(PortClaim(21_000, 1, 1, 0.0))
    # Its S3 ports (base + 500) are the metrics ports of a block 400 above it,
    # its door ports (base + 600) the gRPC ports of one 600 above.
    assert a.overlaps(PortClaim(20_400, 1, 1, 0.0))
    assert a.overlaps(PortClaim(20_600, 1, 1, 0.0))
    # The second cluster of a two-cluster block is the first shifted by 200.
    assert a.overlaps(PortClaim(19_800, 2, 1, 0.0))
    assert a.overlaps(PortClaim(19_200, 2, 1, 0.0))
    assert not a.overlaps(PortClaim(20_200, 1, 1, 0.0))
    assert not a.overlaps(PortClaim(20_800, 1, 1, 0.0))
    assert not a.overlaps(PortClaim(21_200, 2, 1, 0.0))


def test_picks_never_overlap_one_another_while_their_process_lives(claims_dir: Path) -> None:
    picks = [cluster.free_base_port(2) for _ in range(4)]
    picks += [cluster.free_base_port(1) for _ in range(4)]
    blocks = [PortClaim(b, 2 if i < 4 else 1, 0, 0.0) for i, b in enumerate(picks)]
    for i, a in enumerate(blocks):
        assert not any(a.overlaps(b) for b in blocks[i + 1 :]), picks


def test_a_range_too_small_for_another_block_says_so(claims_dir: Path) -> None:
    low, high = 20_000, 23_000
    picks: list[int] = []
    with pytest.raises(RuntimeError, match="no free block") as refused:
        for _ in range(20):
            picks.append(cluster.free_base_port(1, low, high))
    assert picks and f"({len(picks)} held by running tests" in str(refused.value)


def test_a_block_given_back_is_free_again(claims_dir: Path) -> None:
    low, high = 20_000, 20_000 + 1_000 + 2 * PORTS_PER_CLUSTER
    base = cluster.free_base_port(1, low, high)
    with pytest.raises(RuntimeError, match="no free block"):
        cluster.free_base_port(1, low, high)
    cluster.release_base_port(base)
    assert cluster.free_base_port(1, low, high) == base


def test_a_block_of_a_process_that_ended_is_free_again(claims_dir: Path) -> None:
    low, high = 20_000, 20_000 + 1_000 + 2 * PORTS_PER_CLUSTER
    code = (
        "from tests.integration import cluster; from pathlib import Path; "
        f"cluster.CLAIMS_DIR = Path({str(claims_dir)!r}); "
        f"print(cluster.free_base_port(1, {low}, {high}))"
    )
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert cluster.free_base_port(1, low, high) == int(other.stdout)


def test_a_claims_file_of_another_form_is_read_past(claims_dir: Path) -> None:
    claims_dir.mkdir()
    (claims_dir / "claims.json").write_text('[{"base": 20000, "span": 200}, 7]')
    assert cluster.free_base_port(1) > 0
