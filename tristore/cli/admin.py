"""Admin commands: ``tristore admin status``.

The cluster's view comes from the SDK's ``cluster_status()`` (asked of any
node). Witness and replication columns join the table when those roles exist.
"""

from __future__ import annotations

import argparse
from typing import Any

from tristore.cli.util import connect, format_size, format_table, print_json
from tristore.model import ClusterStatus, NodeHealth, WitnessHealth


def _uptime(seconds: float | None) -> str:
    if not seconds:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _node_row(n: NodeHealth) -> list[object]:
    st = n.status if n.up else None
    if st is None:
        return [n.az, n.name, n.grpc, "up" if n.up else "DOWN", "-", "-", "-", n.error or "-"]
    return [
        n.az,
        n.name,
        n.grpc,
        "up",
        st.hints_pending,
        st.objects,
        format_size(st.disk_bytes),
        _uptime(st.uptime_seconds),
    ]


def render_status(status: ClusterStatus) -> str:
    nodes = sorted(status.nodes, key=lambda n: (n.az, n.name))
    azs = "  ".join(
        f"{az} {sum(n.up for n in status.nodes_in(az))}/{len(status.nodes_in(az))}"
        for az in status.azs
    )
    head = (
        f"cluster {status.cluster}  epoch {status.epoch}  "
        f"nodes {status.nodes_up}/{len(nodes)} up  hints pending {status.hints_pending}"
    )
    table = format_table(
        ["AZ", "NODE", "GRPC", "STATE", "HINTS", "OBJECTS", "DISK", "UPTIME/ERROR"],
        [_node_row(n) for n in nodes],
    )
    out = f"{head}\nAZs: {azs}\n\n{table}"
    if status.witnesses:
        wtable = format_table(
            ["GROUP", "WITNESS", "GRPC", "STATE", "INCARNATION", "KEYS", "UPTIME/ERROR"],
            [_witness_row(w) for w in sorted(status.witnesses, key=lambda w: (w.group, w.name))],
        )
        out += f"\n\n{wtable}"
    return out


def _witness_row(w: WitnessHealth) -> list[object]:
    if not w.up:
        return [w.group, w.name, w.grpc, "DOWN", "-", "-", w.error or "-"]
    return [w.group, w.name, w.grpc, "up", f"{w.incarnation:x}", w.keys, _uptime(w.uptime_seconds)]


def cmd_status(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        status = c.cluster_status()
    if args.json:
        print_json(status.to_json())
    else:
        print(render_status(status))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    admin = sub.add_parser(
        "admin", help="cluster administration", description="Inspect and manage a running cluster."
    )
    actions = admin.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    p = actions.add_parser(
        "status",
        parents=[common],
        help="AZs and nodes: up/down, hints pending, objects, disk",
        description="Ask the cluster (any reachable endpoint) for the state of every node.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_status)
