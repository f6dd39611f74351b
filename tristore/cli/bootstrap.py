"""``tristore admin bootstrap`` and ``admin root-credentials``: the files a
cluster deployed from fixed cluster maps (docker compose, Kubernetes) needs to
start secure, made by the code ``tristore dev up`` makes its own with.

``bootstrap`` creates, each only if it is missing (so it can run at every
start): the master-key file (``[kms] key_file``), the cluster CA (``--ca-dir``,
or ``[tls] ca_file``'s directory) and a certificate for every process of the
map naming its role (:func:`tristore.cli.dev.issue_certificates`), and the
bootstrap credentials the map names, ``[auth]`` root and replication keys and
each ``[[remotes]]`` key, their secrets fresh and sealed under the master key
of the cluster that reads them. The maps name the access key ids; only the
secrets are generated. Given several maps (clusters that replicate to each
other) it issues every certificate from one CA, gives a key id named in more
than one map one secret (the root key both clusters share), and seals a
cluster's replication secret into the other cluster's ``[[remotes]]`` file.

``root-credentials`` prints the export lines of the root key (unsealed with
the master key), as ``dev up`` prints them: it creates nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tristore import config, credentials
from tristore.cli.dev import issue_certificates
from tristore.cli.util import CliError, print_doc, print_json
from tristore.config import ClusterConfig
from tristore.errors import InvalidArgument
from tristore.kms import LocalKeyFile

#: The environment variables boto3 and the aws CLI read the key pair from.
AWS_ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
AWS_SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"


def rebase(cfg: ClusterConfig, dest: Path) -> ClusterConfig:
    """``cfg`` with every absolute file path it names moved under ``dest``, as
    ``DESTDIR`` does: the files of a deployment made on another machine
    (``/etc/tristore-tls/ca.crt`` becomes ``dest/etc/tristore-tls/ca.crt``)."""

    def move(path: str) -> str:
        return str(dest / path.lstrip("/")) if path.startswith("/") else path

    return replace(
        cfg,
        cluster=replace(cfg.cluster, data_dir=move(cfg.cluster.data_dir)),
        kms=replace(cfg.kms, key_file=move(cfg.kms.key_file)),
        tls=replace(
            cfg.tls,
            ca_file=move(cfg.tls.ca_file),
            cert_file=move(cfg.tls.cert_file),
            key_file=move(cfg.tls.key_file),
        ),
        auth=replace(
            cfg.auth,
            root_secret_file=move(cfg.auth.root_secret_file),
            replication_secret_file=move(cfg.auth.replication_secret_file),
        ),
        remotes=tuple(replace(r, secret_file=move(r.secret_file)) for r in cfg.remotes),
    )


def _sealed_files(cfg: ClusterConfig) -> list[tuple[str, Path]]:
    """(access key id, sealed secret file) of every bootstrap key ``cfg`` names."""
    a = cfg.auth
    pairs = [
        (a.root_access_key_id, a.root_secret_file),
        (a.replication_access_key_id, a.replication_secret_file),
        *((r.access_key_id, r.secret_file) for r in cfg.remotes),
    ]
    return [(akid, cfg.relative(path)) for akid, path in pairs if akid and path]


def _check_remotes(cfgs: Sequence[ClusterConfig]) -> None:
    """A ``[[remotes]]`` key must be the replication principal of that cluster,
    when its map is one of ``cfgs``: else its replicators could never sign."""
    by_name = {c.cluster.name: c for c in cfgs}
    for cfg in cfgs:
        for r in cfg.remotes:
            other = by_name.get(r.name)
            if other is None or not r.access_key_id:
                continue
            if r.access_key_id != other.auth.replication_access_key_id:
                raise InvalidArgument(
                    f"{cfg.path}: [[remotes]] {r.name!r} signs as {r.access_key_id!r}, but "
                    f"{other.path} names {other.auth.replication_access_key_id!r} as its "
                    "[auth] replication_access_key_id"
                )


def seal_credentials(cfgs: Sequence[ClusterConfig]) -> list[Path]:
    """Write every sealed secret file the maps name and that is missing; a key
    id already sealed somewhere keeps its secret. Returns the files written."""
    _check_remotes(cfgs)
    known: dict[str, str] = {}
    missing: list[tuple[ClusterConfig, str, Path]] = []
    for cfg in cfgs:
        for akid, path in _sealed_files(cfg):
            if not path.exists():
                missing.append((cfg, akid, path))
                continue
            secret = credentials.read_sealed_file(path, LocalKeyFile(cfg.kms_key_file), akid)
            if known.setdefault(akid, secret) != secret:
                raise InvalidArgument(
                    f"{path} holds another secret for {akid} than an earlier file: "
                    "remove the stale one (its cluster's keys were made again)"
                )
    for cfg, akid, path in missing:
        secret = known.setdefault(akid, credentials.new_access_key()[1])
        credentials.write_sealed_file(path, LocalKeyFile(cfg.kms_key_file), akid, secret)
    return [path for _, _, path in missing]


def bootstrap(
    cfgs: Sequence[ClusterConfig], ca_dir: Path | None = None, node_hosts: Sequence[str] = ()
) -> dict[str, Any]:
    """Create what is missing of every map's files (module docstring); what
    was created, by kind."""
    made: dict[str, Any] = {"master_keys": [], "certificates": [], "sealed_secrets": []}
    for cfg in cfgs:
        path = cfg.kms_key_file
        if not path.exists():
            LocalKeyFile.create(path)
            made["master_keys"].append(str(path))
    for cfg in cfgs:
        for name in issue_certificates(cfg, ca_dir, node_hosts):
            made["certificates"].append(f"{cfg.cluster.name}/{name}")
    made["sealed_secrets"] = [str(p) for p in seal_credentials(cfgs)]
    return made


def _load(paths: Sequence[str], dest: str | None) -> list[ClusterConfig]:
    cfgs = [config.load(p) for p in paths]
    return [rebase(c, Path(dest)) for c in cfgs] if dest else cfgs


def cmd_bootstrap(args: argparse.Namespace) -> int:
    cfgs = _load(args.config, args.dest)
    ca_dir = Path(args.ca_dir) if args.ca_dir else None
    made = bootstrap(cfgs, ca_dir, args.node_host)
    if args.json:
        print_json(made)
        return 0
    for path in made["master_keys"]:
        print(f"created master key file {path} (mode 0600)")
    if made["certificates"]:
        print(f"issued certificates: {', '.join(made['certificates'])}")
    for path in made["sealed_secrets"]:
        print(f"sealed a new secret in {path} (mode 0600)")
    if not any(made.values()):
        print("every file exists; nothing to do")
    return 0


def cmd_root_credentials(args: argparse.Namespace) -> int:
    (cfg,) = _load([args.config], args.dest)
    creds = credentials.root_credentials(cfg)
    if creds is None:
        raise CliError(
            "InvalidArgument", f"{args.config} names no root key ([auth] root_access_key_id)"
        )
    if args.json:
        print_doc(
            "admin root-credentials",
            {"access_key_id": creds.access_key_id, "secret_access_key": creds.secret_access_key},
        )
        return 0
    # In the order `dev up` prints them.
    print(f"export {credentials.ACCESS_KEY_ENV}={creds.access_key_id}")
    print(f"export {credentials.SECRET_KEY_ENV}={creds.secret_access_key}")
    print(f"export {AWS_ACCESS_KEY_ENV}={creds.access_key_id}")
    print(f"export {AWS_SECRET_KEY_ENV}={creds.secret_access_key}")
    return 0


def add_parsers(actions: Any) -> None:
    """``admin bootstrap`` and ``admin root-credentials`` (local: no node is asked)."""
    dest_help = (
        "make the files under DIR: an absolute path of the map, /etc/x, is DIR/etc/x "
        "(files for another machine, e.g. Kubernetes Secrets)"
    )
    p = actions.add_parser(
        "bootstrap",
        help="create a deployment's master keys, CA, certificates and root keys (local)",
        description="Create what the clusters of these maps need to start with TLS and "
        "signed requests, each file only if it is missing: the master-key file ([kms] "
        "key_file), the CA and one certificate per process naming its role ([tls]), and "
        "the secrets of the keys [auth] and [[remotes]] name, sealed under the master key. "
        "Clusters given together share the CA and the root key, and each gets the other's "
        "replication key. No node is asked; no secret is printed.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        action="append",
        required=True,
        help="a cluster's TOML file (repeat for clusters that replicate to each other)",
    )
    p.add_argument(
        "--ca-dir",
        metavar="DIR",
        help="keep the CA (ca.crt, ca.key) here and copy only ca.crt to [tls] ca_file "
        "(default: the CA lives in ca_file's directory)",
    )
    p.add_argument(
        "--node-host",
        metavar="NAME",
        action="append",
        default=[],
        help="another DNS name or address clients reach the nodes by (a Service, a load "
        "balancer), put in every node's certificate; repeatable",
    )
    p.add_argument("--dest", metavar="DIR", help=dest_help)
    p.add_argument("--json", action="store_true", help="print what was created as JSON")
    p.set_defaults(func=cmd_bootstrap)

    p = actions.add_parser(
        "root-credentials",
        help="print the export lines of a cluster's root key (local)",
        description="Unseal the root secret ([auth] root_secret_file) with the master key "
        "and print the export lines the SDK, the CLI, boto3 and the aws CLI read. Creates "
        "nothing; no node is asked.",
    )
    p.add_argument("--config", metavar="FILE", required=True, help="the cluster's TOML file")
    p.add_argument("--dest", metavar="DIR", help=dest_help)
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"schema": 1, "command", "access_key_id", "secret_access_key"} instead',
    )
    p.set_defaults(func=cmd_root_credentials)
