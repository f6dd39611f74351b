"""The PNG of the soak: resident memory, open files and data-dir bytes of every
process over time, with the warm-up half shaded and the nemesis' faults marked
along the top. Drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

# After matplotlib.use: the backend must be chosen before pyplot is imported.
import matplotlib.pyplot as plt

MiB = 1024 * 1024

#: Column of a raw sample ([t, pid, rss, fds, disk]), scale, title, unit.
PANELS = [
    (2, MiB, "Resident memory (VmRSS)", "MiB"),
    (3, 1, "Open file descriptors", "/proc/PID/fd"),
    (4, MiB, "Data directory", "MiB on disk"),
]
ROLE_STYLE = {"node": "-", "witness": ":", "replicator": "--"}


def plot(result: dict[str, Any], path: Path) -> None:
    series: dict[str, list[list[float]]] = result["series"]
    roles = {p["name"]: p["role"] for p in result["processes"]}
    slopes = {p["name"]: p for p in result["processes"]}
    duration_min = result["meta"]["duration_s"] / 60
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(13, 11), dpi=100, sharex=True)
    colours = plt.get_cmap("tab20")
    for ax, (col, scale, title, unit) in zip(axes, PANELS, strict=True):
        for i, (name, rows) in enumerate(sorted(series.items())):
            if not rows:
                continue
            if col == 4 and roles.get(name) == "witness":
                continue  # memory only: no data directory
            ax.plot(
                [r[0] / 60 for r in rows],
                [r[col] / scale for r in rows],
                label=name,
                color=colours(i % 20),
                linestyle=ROLE_STYLE.get(roles.get(name, ""), "-"),
                linewidth=1.0,
            )
        ax.axvspan(0, duration_min / 2, color="0.92", zorder=0)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(True, alpha=0.3)
        for fault in result["faults"]:
            ax.axvspan(
                fault["began_s"] / 60, fault["healed_s"] / 60, ymin=0.96, color="tab:red", alpha=0.5
            )
    axes[-1].set_xlabel("minutes (grey: warm-up, not fitted; red ticks: faults)")
    handles, labels = axes[0].get_legend_handles_labels()
    labels = [
        f"{n}  {_slope(slopes.get(n, {}), 'rss_mib_per_h')} MiB/h RSS, "
        f"{_slope(slopes.get(n, {}), 'fds_per_h')} fds/h, "
        f"{_slope(slopes.get(n, {}), 'disk_mib_per_h')} MiB/h disk"
        for n in labels
    ]
    fig.legend(handles, labels, loc="center right", fontsize=6.5, frameon=False)
    meta = result["meta"]
    fig.suptitle(
        f"tristore soak: {meta['minutes']:g} min of mixed traffic under a rotating nemesis "
        f"({len(result['faults'])} faults); slopes: linear fit over the second half",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 0.72, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _slope(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "?" if value is None else f"{value:+.1f}"
