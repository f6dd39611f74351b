"""Cluster maps for unit tests."""

from __future__ import annotations

from typing import Any

AZS = ("az-a", "az-b", "az-c")


def node_table(azs: tuple[str, ...] = AZS, per_az: int = 2) -> list[dict[str, Any]]:
    """``[[nodes]]`` entries: ``per_az`` nodes in each AZ, on distinct ports."""
    out: list[dict[str, Any]] = []
    for a, az in enumerate(azs):
        for i in range(per_az):
            n = a * per_az + i
            out.append(
                {
                    "name": f"{az[-1]}{i + 1}",
                    "id": n + 1,
                    "az": az,
                    "grpc": f"127.0.0.1:{7101 + n}",
                    "metrics": f"127.0.0.1:{9101 + n}",
                }
            )
    return out
