"""Admin commands: ``tristore admin status|drain|undrain|decommission|config show|kms init|rotate``
(and ``bootstrap``, ``root-credentials``: :mod:`tristore.cli.bootstrap`).

The cluster's view comes from the SDK's ``cluster_status()`` (asked of any
node). Witness and replication columns join the table when those roles exist.
Changes to the cluster map go to one node (``change_node``), which makes the
next map and hands it to every node; progress is then read from the status of
the node that drains.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore import clustermap, config
from tristore.cli import admin_repair, admin_scrub, auth, bootstrap, progress
from tristore.cli.util import connect, format_size, format_table, print_json
from tristore.errors import InvalidArgument, ServiceUnavailable
from tristore.kms import LocalKeyFile

if TYPE_CHECKING:
    from tristore.client import Client
    from tristore.model import (
        ClusterStatus,
        NodeHealth,
        NodeStatus,
        ReplicatorHealth,
        WitnessHealth,
    )

#: Seconds between two looks at a draining node.
POLL_S = 0.5


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
        down = "DOWN" if n.up is False else "?"
        return [n.az, n.name, n.grpc, down, "-", "-", "-", "-", "-", "-", n.error or "-"]
    state = "up" if st.state == "active" else st.state
    if st.disk_state:
        state += f" (disk {st.disk_state})"  # writes refused: reads go on
    return [
        n.az,
        n.name,
        n.grpc,
        state,
        st.epoch,
        st.hints_pending,
        st.handoffs_pending if st.state != "active" else "-",
        st.objects,
        st.tombstones,
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
    lag = status.replication_lag
    if lag:
        worst = max(lag, key=lambda d: lag[d])
        head += f"  replication lag {_lag(lag[worst])} ({worst})"
    table = format_table(
        [
            "AZ",
            "NODE",
            "GRPC",
            "STATE",
            "EPOCH",
            "HINTS",
            "HANDOFFS",
            "OBJECTS",
            "TOMBSTONES",
            "DISK",
            "UPTIME/ERROR",
        ],
        [_node_row(n) for n in nodes],
    )
    out = f"{head}\nAZs: {azs}\n\n{table}"
    if status.witnesses:
        wtable = format_table(
            ["GROUP", "WITNESS", "GRPC", "STATE", "INCARNATION", "KEYS", "UPTIME/ERROR"],
            [_witness_row(w) for w in sorted(status.witnesses, key=lambda w: (w.group, w.name))],
        )
        out += f"\n\n{wtable}"
    if status.replicators:
        rtable = format_table(
            [
                "REPLICATOR",
                "GRPC",
                "STATE",
                "DLQ",
                "LOG BEHIND",
                "LAG BY DESTINATION",
                "UPTIME/ERROR",
            ],
            [_replicator_row(r) for r in sorted(status.replicators, key=lambda r: r.name)],
        )
        out += f"\n\n{rtable}"
    return out


def _lag(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def _replicator_row(r: ReplicatorHealth) -> list[object]:
    if not r.up or r.status is None:
        return [r.name, r.grpc, "DOWN", "-", "-", "-", r.error or "-"]
    st = r.status
    lags = ", ".join(f"{d} {_lag(lag)}" for d, lag in sorted(st.lag_seconds.items()))
    return [
        r.name,
        r.grpc,
        "up",
        st.dlq_entries,
        st.log_entries_behind,
        lags or "-",
        _uptime(st.uptime_seconds),
    ]


def _witness_row(w: WitnessHealth) -> list[object]:
    if not w.up:
        return [w.group, w.name, w.grpc, "DOWN", "-", "-", w.error or "-"]
    return [w.group, w.name, w.grpc, "up", f"{w.incarnation:x}", w.keys, _uptime(w.uptime_seconds)]


def _node_status(c: Client, name: str) -> NodeStatus | None:
    """``name``'s own status (None while it does not answer)."""
    for n in c.cluster_status().nodes:
        if n.name == name:
            return n.status if n.up else None
    raise InvalidArgument(f"no node named {name!r} in the cluster map")


def _print_change(change: clustermap.MapChange, what: str) -> None:
    missed = (
        f"; not reached: {', '.join(change.not_reached)} (they learn it from their peers)"
        if change.not_reached
        else ""
    )
    print(f"epoch {change.map.epoch}: {what}; {len(change.acked)} nodes took the map{missed}")


def _wait_drained(c: Client, name: str, timeout_s: float, quiet: bool) -> NodeStatus:
    """Poll ``name`` until it holds nothing; a progress bar on a terminal."""
    first = _node_status(c, name)
    total = first.objects + first.handoffs_pending if first is not None else None
    bar = progress.for_stderr(total, enabled=not quiet, unit="keys")
    deadline = time.monotonic() + timeout_s
    said_down = False
    try:
        while True:
            st = _node_status(c, name)
            if st is None:
                if not said_down:
                    print(
                        f"{name} does not answer; its drain goes on when it is back",
                        file=sys.stderr,
                    )
                    said_down = True
            else:
                left = st.objects + st.handoffs_pending
                if total is None or left > total:
                    total = bar.total = left
                bar(total - left)
                if st.state == "draining" and left == 0:
                    return st
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"{name} has not finished draining after {timeout_s:.0f}s"
                    + (
                        f" ({st.objects} keys and {st.handoffs_pending} handoffs left)"
                        if st
                        else ""
                    )
                    + "; it goes on in the background: look again with `tristore admin status`"
                )
            time.sleep(POLL_S)
    finally:
        bar.close()


def cmd_drain(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with connect(args.endpoint) as c:
        change = c.change_node(args.node, clustermap.DRAIN, args.expect_epoch)
        if not args.json:
            _print_change(change, f"{args.node} is draining (it takes no new writes)")
        if args.no_wait:
            if args.json:
                print_json(change.to_json())
            return 0
        st = _wait_drained(c, args.node, args.timeout, args.json)
    took = time.monotonic() - started
    if args.json:
        print_json({**change.to_json(), "drained": True, "seconds": round(took, 3)})
    else:
        print(
            f"{args.node} is drained: it holds no keys ({took:.1f}s). "
            f"`tristore admin decommission {args.node}` removes it from the map; "
            f"`tristore admin undrain {args.node}` takes it back. (epoch {st.epoch})"
        )
    return 0


def cmd_undrain(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        change = c.change_node(args.node, clustermap.UNDRAIN, args.expect_epoch)
    if args.json:
        print_json(change.to_json())
    else:
        _print_change(
            change, f"{args.node} is active again (its keys come back to it from the others)"
        )
    return 0


def cmd_decommission(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        cmap = c.cluster_map()
        spec = cmap.node(args.node)
        if spec.state != "draining" and not args.force:
            change = c.change_node(args.node, clustermap.DRAIN, args.expect_epoch)
            if not args.json:
                _print_change(change, f"{args.node} is draining before it leaves")
        if not args.force:
            _wait_drained(c, args.node, args.timeout, args.json)
        # The node to leave cannot remove itself: ask the others.
        others = ",".join(n.grpc for n in cmap.nodes if n.name != args.node)
    with connect(others) as c:
        change = c.change_node(args.node, clustermap.REMOVE, force=args.force)
    if args.json:
        print_json(change.to_json())
    else:
        _print_change(change, f"{args.node} left the cluster map; its process stops")
        if args.force:
            print(
                "it was removed without draining: run `tristore admin repair` so that every "
                "key is on a node of each of its AZs again"
            )
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        cfg = c.node_config()
    if args.json:
        print_json({"node": cfg.node, "epoch": cfg.epoch, "toml": cfg.toml})
    else:
        print(f"# effective configuration of node {cfg.node}, cluster map epoch {cfg.epoch}")
        print(cfg.toml)
    return 0


def cmd_kms_init(args: argparse.Namespace) -> int:
    """Create the master-key file where the cluster's processes will read it
    (a local file operation: no node is asked)."""
    path = Path(args.key_file) if args.key_file else config.load(args.config).kms_key_file
    existed = path.exists()
    kms = LocalKeyFile.create(path)
    if args.json:
        print_json({"key_file": str(path), "key_id": kms.current_key_id(), "created": not existed})
    elif existed:
        print(f"master key file {path} exists (current key {kms.current_key_id()}); left as it is")
    else:
        print(f"created master key file {path} (key {kms.current_key_id()}, mode 0600)")
    return 0


def cmd_kms_rotate(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        r = c.rotate_master_key(keep_key=args.keep_key)
    if args.json:
        print_json(r.to_json())
    else:
        print(
            f"master key {r.key_id} is current: {r.rewrapped} bucket keys re-wrapped under it, "
            f"{r.unchanged} already were (object bodies and data keys are not rewritten)"
        )
    return 0


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

    def node_command(
        name: str, func: Any, help: str, description: str, wait: bool
    ) -> argparse.ArgumentParser:
        p = actions.add_parser(name, parents=[common], help=help, description=description)
        p.add_argument("node", metavar="NODE", help="node name, as in the cluster map")
        p.add_argument(
            "--expect-epoch",
            type=int,
            default=0,
            help="refuse if the cluster map is no longer at this epoch",
        )
        p.add_argument("--json", action="store_true", help="print one JSON object")
        if wait:
            p.add_argument(
                "--timeout", type=float, default=3600.0, help="seconds to wait for the drain"
            )
        p.set_defaults(func=func)
        return p

    p = node_command(
        "drain",
        cmd_drain,
        "stop placing new writes on a node and hand its data to the rest of its AZ",
        "Mark NODE draining (a new cluster map, epoch + 1, handed to every node): it is "
        "home to no key, takes writes only while every other node of its AZ is down, "
        "and hands every key it holds to the node of its AZ now home to it. Waits, with "
        "a progress bar, until it holds nothing.",
        wait=True,
    )
    p.add_argument("--no-wait", action="store_true", help="return once the map changed")
    node_command(
        "undrain",
        cmd_undrain,
        "make a draining node active again",
        "Mark NODE active again; the keys it is home to come back to it from the others.",
        wait=False,
    )
    p = node_command(
        "decommission",
        cmd_decommission,
        "drain a node, then remove it from the cluster map (its process stops)",
        "Drain NODE if it is not drained yet, wait until it holds nothing, then remove it "
        "from the cluster map. The node stops once it learns it left. With --force the "
        "node is removed at once, drained or not, answering or not (a lost machine): run "
        "`tristore admin repair` after.",
        wait=True,
    )
    p.add_argument("--force", action="store_true", help="remove without draining (lost node)")

    admin_repair.add_parser(actions, common)
    admin_scrub.add_parser(actions, common)
    auth.register_admin(actions, common)
    bootstrap.add_parsers(actions)

    config = actions.add_parser(
        "config", help="the cluster's configuration", description="Show the configuration."
    )
    config_actions = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    p = config_actions.add_parser(
        "show",
        parents=[common],
        help="a node's effective configuration (file and current cluster map) as TOML",
        description="Print the configuration the answering node runs with: its config file "
        "with the cluster map it holds now (nodes, states, epoch) in place of the file's.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_config_show)

    kms = actions.add_parser(
        "kms",
        help="master keys of encryption at rest",
        description="Manage the master keys that seal bucket keys (see docs/security.md).",
    )
    kms_actions = kms.add_subparsers(dest="kms_command", metavar="COMMAND", required=True)
    p = kms_actions.add_parser(
        "init",
        help="create the cluster's master-key file (local; no node is asked)",
        description="Create the master-key file of the local key provider with one fresh "
        "key, unless it exists (then it is left as it is): the file every process of a "
        "cluster must share before its nodes start. `tristore dev up` does this itself; "
        "the compose stack runs it in a one-shot container, Kubernetes takes the file as a "
        "Secret.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--config", metavar="FILE", help="the cluster's TOML file: its [kms] key_file"
    )
    where.add_argument("--key-file", metavar="PATH", help="the file to create")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_kms_init)

    p = kms_actions.add_parser(
        "rotate",
        parents=[common],
        help="add a master key, make it current and re-wrap every bucket key under it",
        description="Add a fresh master key to the key provider ([kms] key_file) and make it "
        "current, then re-wrap every bucket key under it. Object bodies and their data keys "
        "are not rewritten; objects written before keep reading. Once it succeeded, older "
        "master keys are no longer needed (re-run with --keep-key to finish an interrupted "
        "rotation).",
    )
    p.add_argument(
        "--keep-key", action="store_true", help="only re-wrap, under the current master key"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_kms_rotate)
