"""``tristore serve ROLE``: run one node, witness or replicator in the foreground.

The roles live in their own packages (``node``, ``witness``, ``replicator``),
which import ``tristore`` and never the other way round, so the role is found at
run time: through the ``tristore.roles`` entry point group when tristore is
installed, else (a checkout on PYTHONPATH) as ``<role>.server``. Either way it is
a callable ``main(config: ClusterConfig, name: str) -> None`` that blocks until
SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from tristore.cli.util import not_implemented
from tristore.config import ClusterConfig, load

ROLES = ("node", "witness", "replicator")
ENTRY_POINT_GROUP = "tristore.roles"
#: Where each role gets built; named in the error while a role does not exist yet.
_ARRIVES = {"node": "issue 1", "witness": "issue 4", "replicator": "issue 6"}

RoleMain = Callable[[ClusterConfig, str], None]


def _not_built(role: str) -> Exception:
    return not_implemented(f"the {role} role is not built yet (see {_ARRIVES[role]})")


def find_role(role: str) -> RoleMain:
    from importlib.metadata import entry_points  # ~40 ms: not for dev's or serve's --help

    for ep in entry_points(group=ENTRY_POINT_GROUP, name=role):
        main: RoleMain = ep.load()
        return main
    module_name = f"{role}.server"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only "the role does not exist"; a missing dependency inside it is a real error.
        if e.name in (role, module_name):
            raise _not_built(role) from None
        raise
    found: Any = getattr(module, "main", None)
    if not callable(found):
        raise _not_built(role)
    return found


def cmd_serve(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    # Fail here, with the valid names, not deep in the process.
    if args.role == "node":
        cfg.node_named(args.name)
    elif args.role == "witness":
        cfg.witness_named(args.name)
    elif args.role == "replicator":
        cfg.replicator_named(args.name)
    main = find_role(args.role)
    from tristore.server import private_files  # the CLI's other commands do without grpc

    # Witnesses keep nothing on disk; nodes and replicators keep it private.
    private_files(cfg.data_dir_for(args.name) if args.role != "witness" else None)
    main(cfg, args.name)
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        help="run one process (node, witness, replicator) in the foreground",
        description="Run one tristore process with the cluster map in --config, as the "
        "process named --name in it. Stops gracefully on SIGTERM or Ctrl-C.",
    )
    p.add_argument("role", choices=ROLES, help="which process to run")
    p.add_argument("--config", required=True, metavar="FILE", help="the cluster's TOML file")
    p.add_argument("--name", required=True, metavar="NAME", help="this process's name in it")
    p.set_defaults(func=cmd_serve)
