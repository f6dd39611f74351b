"""The PNG of bench/compare.py: throughput and p99 latency against concurrency.

Two panels, log-scaled concurrency on x: operations per second (left) and p99
latency in ms (right), both log y, for etcd and tristore PUT and GET, the echo
ceiling, the hot-key reads at c64 as stars, tristore's S3 door (PUT and GET
at c1 and c64), and the plain-vs-TLS twins (etcd-tls, tristore-plain) at c64
as x (PUT) and + (GET). Drawn with matplotlib's Agg
backend, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

# After matplotlib.use: the backend must be chosen before pyplot is imported.
import matplotlib.pyplot as plt

#: (system, op) -> label, colour, line style, marker
SERIES: list[tuple[str, str, str, str, str, str]] = [
    ("etcd", "put", "etcd PUT", "tab:blue", "-", "o"),
    ("etcd", "get", "etcd GET (linearizable)", "tab:blue", "--", "s"),
    ("tristore", "put", "tristore PUT", "tab:orange", "-", "o"),
    ("tristore", "get", "tristore GET (linearizable)", "tab:orange", "--", "s"),
    ("echo", "echo", "grpc.aio echo (Python ceiling)", "tab:gray", ":", "^"),
    ("etcd", "get_hot", "etcd GET serializable, hot keys", "tab:blue", "", "*"),
    ("tristore", "get_hot", "tristore GET hot keys (cache, linearizable)", "tab:orange", "", "*"),
    ("tristore", "s3-put", "tristore S3 PUT (HTTP door)", "tab:red", "-", "D"),
    ("tristore", "s3-get", "tristore S3 GET (HTTP door)", "tab:red", "--", "d"),
    ("etcd-tls", "put", "etcd TLS PUT", "tab:blue", "", "x"),
    ("etcd-tls", "get", "etcd TLS GET", "tab:blue", "", "+"),
    ("tristore-plain", "put", "tristore plain, unsigned PUT", "tab:orange", "", "x"),
    ("tristore-plain", "get", "tristore plain, unsigned GET", "tab:orange", "", "+"),
]


def plot(result: dict[str, Any], path: Path) -> None:
    rows = [r for r in result["rows"] if r["ok"]]
    fig, (thr, lat) = plt.subplots(1, 2, figsize=(12, 5.8), dpi=110)
    for system, op, label, colour, style, marker in SERIES:
        pts = sorted(
            (r["conc"], r["per_s"], r["p99_ms"])
            for r in rows
            if (r["system"], r["op"]) == (system, op)
        )
        if not pts:
            continue
        x = [p[0] for p in pts]
        kw: dict[str, Any] = {"label": label, "color": colour, "marker": marker}
        kw |= {"linestyle": style} if style else {"linestyle": "none", "markersize": 12}
        thr.plot(x, [p[1] for p in pts], **kw)
        lat.plot(x, [p[2] for p in pts], **kw)
    concs = sorted({r["conc"] for r in rows if r["op"] in ("put", "get", "echo")})
    for ax, title, ylabel in (
        (thr, "Throughput, 1 KiB values", "operations / s"),
        (lat, "p99 latency", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(concs, [str(c) for c in concs])
        ax.set_xlabel("concurrent workers (one client each; S3: one keep-alive pool)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    # Log y on both: the systems sit an order of magnitude apart.
    thr.set_yscale("log")
    lat.set_yscale("log")
    # Below both panels, where it covers no point.
    handles, labels = thr.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7.5, frameon=False)
    meta = result.get("meta", {})
    uptime = meta.get("machine", {}).get("uptime_before", "")
    load = uptime.split("load average:")[-1].strip() if "load average" in uptime else "?"
    fig.suptitle(
        f"tristore vs etcd 3.4 (3 members) vs Python gRPC echo, same client, one run"
        f"{' (quick)' if meta.get('quick') else ''}; load before: {load}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
