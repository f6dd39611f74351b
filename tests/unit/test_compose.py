"""deploy/docker-compose.yml, deploy/Dockerfile and deploy/base-image.sh, offline.

No Docker daemon needed. What is checked:

- the compose file keeps to the 3.8 file format (Compose v1 from 1.29, which
  knows ``service_completed_successfully``, and v2 both read it): top-level
  keys, service keys, depends_on conditions;
- each cluster's one-shot init container creates the master-key file
  (``tristore admin kms init``) in a volume every node of the cluster mounts
  where its ``[kms] key_file`` says, and the nodes start once it has
  succeeded;
- every tristore service runs the image built from deploy/Dockerfile as a
  non-root user, with its own data volume at the cluster map's data_dir and
  a healthcheck; its cluster map (compose/CLUSTER.toml, mounted read-only)
  loads through ``tristore.config`` and names exactly the processes compose
  runs: names, roles, AZs (labels and networks), addresses (the service
  name, gRPC 7100, metrics 7200) and ``[[remotes]]`` (the other cluster's
  nodes);
- whoever must reach whom shares a network with it;
- the services are deploy/prometheus/prometheus.yml's targets, with the same
  cluster, role and az labels;
- the Dockerfile has the ARG, USER, VOLUME, HEALTHCHECK and ENTRYPOINT the
  deployment relies on, and installs from the wheelhouse only;
- deploy/base-image.sh parses (``bash -n``) and hard-codes no mirror.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from tristore import config
from tristore.credentials import Credentials
from tristore.kms import LocalKeyFile
from tristore.tls import DOOR_PORT_OFFSET

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
BASE_IMAGE_SH = DEPLOY / "base-image.sh"
CONFIG_IN_CONTAINER = "/etc/tristore/cluster.toml"
CLUSTERS = ("east", "west")
UID = 10001
GRPC_PORT, METRICS_PORT, S3_PORT = 7100, 7200, 7300

#: What the 3.8 file format allows (compose-spec keys added later are refused:
#: Compose v1 rejects them).
TOP_LEVEL_KEYS = {"version", "services", "networks", "volumes", "configs", "secrets"}
SERVICE_KEYS = {
    "build", "cap_add", "cap_drop", "command", "container_name", "depends_on", "deploy",
    "devices", "dns", "entrypoint", "env_file", "environment", "expose", "extra_hosts",
    "healthcheck", "image", "init", "labels", "logging", "network_mode", "networks",
    "ports", "read_only", "restart", "security_opt", "stop_grace_period", "stop_signal",
    "sysctls", "tmpfs", "ulimits", "user", "volumes", "working_dir",
}  # fmt: skip
#: What Compose v1 1.29 and v2 accept in depends_on's long form.
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@dataclass(frozen=True)
class Process:
    """One tristore service as compose runs it."""

    service: str
    cluster: str
    role: str
    name: str
    az: str | None
    cfg: config.ClusterConfig


@functools.cache
def _compose() -> dict[str, Any]:
    """The parsed file (cached: read it, never change it)."""
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _is_tristore(svc: dict[str, Any]) -> bool:
    return "build" in svc or "tristore" in str(svc.get("image", ""))


def _is_init(svc: dict[str, Any]) -> bool:
    return svc.get("labels", {}).get("tristore.role") == "init"


def _tristore_services() -> dict[str, dict[str, Any]]:
    """The long-running tristore processes (not the one-shot init containers)."""
    return {
        name: svc for name, svc in _services().items() if _is_tristore(svc) and not _is_init(svc)
    }


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (short syntax: SOURCE:TARGET[:MODE])."""
    out = {}
    for v in svc.get("volumes", []):
        assert isinstance(v, str), f"use the short volume syntax: {v!r}"
        source, target, *_ = v.split(":")
        out[target] = source
    return out


def _config_of(service: str, svc: dict[str, Any]) -> config.ClusterConfig:
    mounts = [v for v in svc["volumes"] if v.split(":")[1] == CONFIG_IN_CONTAINER]
    assert len(mounts) == 1, f"{service}: mount its cluster map at {CONFIG_IN_CONTAINER}"
    source, _, mode = mounts[0].split(":")
    assert mode == "ro", f"{service}: mount the cluster map read-only"
    # The environment must not bend what the file says.
    return config.load(DEPLOY / source, env={})


def _processes() -> list[Process]:
    out = []
    for service, svc in _tristore_services().items():
        cmd = svc["command"]
        assert isinstance(cmd, list), f"{service}: give command as a list"
        assert cmd[:2] == ["serve", cmd[1]] and cmd[2:4] == ["--config", CONFIG_IN_CONTAINER]
        assert cmd[4] == "--name" and len(cmd) == 6, f"{service}: {cmd}"
        labels = svc["labels"]
        out.append(
            Process(
                service=service,
                cluster=labels["tristore.cluster"],
                role=cmd[1],
                name=cmd[5],
                az=labels.get("tristore.az"),
                cfg=_config_of(service, svc),
            )
        )
    return out


@pytest.fixture(scope="module")
def processes() -> list[Process]:
    return _processes()


def _networks(service: str) -> set[str]:
    nets = _services()[service].get("networks", [])
    assert isinstance(nets, list), f"{service}: list its networks"
    return set(nets)


def _prometheus_targets() -> Iterator[tuple[str, int, dict[str, str]]]:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "tristore"]
    for group in job["static_configs"]:
        for target in group["targets"]:
            host, port = target.rsplit(":", 1)
            yield host, int(port), group["labels"]


# --------------------------------------------------------------------- format


def test_compose_file_format_is_3_8() -> None:
    data = _compose()
    assert str(data["version"]) == "3.8"
    extra = {k for k in data if not k.startswith("x-")} - TOP_LEVEL_KEYS
    assert not extra, f"top-level keys the 3.8 format lacks: {extra}"
    for name, svc in data["services"].items():
        extra = set(svc) - SERVICE_KEYS
        assert not extra, f"{name}: keys the 3.8 format lacks (or v1 rejects): {extra}"
        deps = svc.get("depends_on", [])
        if isinstance(deps, dict):
            for dep, cond in deps.items():
                assert set(cond) == {"condition"}, f"{name}: {dep}: {cond}"
                assert cond["condition"] in DEPENDS_ON_CONDITIONS, f"{name}: {dep}: {cond}"
        assert set(deps) <= set(data["services"]), f"{name}: depends on unknown services"
        for net in svc.get("networks", []):
            assert net in data["networks"], f"{name}: network {net} is not declared"
        for target, source in _mounts(svc).items():
            if not source.startswith((".", "/")):
                assert source in data["volumes"], f"{name}: volume {source} is not declared"
            else:
                assert (DEPLOY / source).exists(), f"{name}: {source} (for {target}) is missing"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_v1_accepts_the_file() -> None:
    """Compose v1 validates against the 3.8 schema; `config` needs no daemon."""
    proc = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------- image and runtime


def test_every_tristore_service_uses_the_image_of_deploy_dockerfile() -> None:
    services = {name: svc for name, svc in _services().items() if _is_tristore(svc)}
    assert len(services) == 1 + 2 * (6 + 3 + 2)  # init, then each cluster's processes
    for name, svc in services.items():
        build = svc["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert "BASE_IMAGE" in build.get("args", {}), f"{name}: pass BASE_IMAGE through"
        assert re.fullmatch(r"\$\{TRISTORE_IMAGE:-tristore:[\w.-]+\}", svc["image"]), name
    assert len({svc["image"] for svc in services.values()}) == 1, "one image for every role"


def test_every_tristore_service_runs_as_non_root_with_data_volume_and_healthcheck(
    processes: list[Process],
) -> None:
    services = _services()
    data_volumes: list[str] = []
    for p in processes:
        svc = services[p.service]
        assert str(svc["user"]) == f"{UID}:{UID}", f"{p.service}: run as UID {UID}"
        data = _mounts(svc).get(p.cfg.cluster.data_dir)
        assert data is not None, f"{p.service}: no volume at data_dir {p.cfg.cluster.data_dir}"
        assert not data.startswith((".", "/")), f"{p.service}: data on a named volume"
        data_volumes.append(data)
        hc = svc["healthcheck"]
        assert not hc.get("disable") and hc.get("test") not in (["NONE"], "NONE"), p.service
        if "test" not in hc:  # the image's HEALTHCHECK command, with these timings
            assert "HEALTHCHECK" in DOCKERFILE.read_text()
    assert len(set(data_volumes)) == len(data_volumes), "every process needs its own volume"


INIT = "init"
CA_IN_INIT = "/etc/tristore/ca"


def _in_container(cfg: config.ClusterConfig, path: str) -> config.ClusterConfig:
    """``cfg`` as a container sees it: read from ``path`` (relative paths in it
    are relative to that)."""
    return replace(cfg, path=path)


def _init_configs() -> dict[str, str]:
    """Cluster -> where the init container reads its map."""
    init = _services()[INIT]
    cmd = init["command"]
    paths = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--config"]
    out = {}
    for path in paths:
        (source,) = [v.split(":")[0] for v in init["volumes"] if v.split(":")[1] == path]
        out[config.load(DEPLOY / source, env={}).cluster.name] = path
    return out


def _dockerfile_makes(directory: str) -> bool:
    """The Dockerfile creates ``directory`` and gives it to UID 10001 (a new
    named volume copies its mount point's owner: else UID 10001 cannot write it)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    listed = re.search(r'secrets="([^"]*)"', text)
    dirs = set(listed.group(1).split()) if listed else set()
    return (
        directory in dirs
        and re.search(r"mkdir -p [^&]*\$secrets\b", text) is not None
        and re.search(rf"chown {UID}:{UID} [^&]*\$secrets\b", text) is not None
    )


def test_compose_configs_run_tls_and_signed_requests(processes: list[Process]) -> None:
    """Secure by default: no cluster map of the stack says insecure, and every
    one checks signatures with bootstrap keys it names."""
    for path in sorted((DEPLOY / "compose").glob("*.toml")):
        assert not re.search(r"^\s*insecure\s*=\s*true", path.read_text(), re.M), path
    for p in processes:
        assert not p.cfg.tls.insecure, p.service
        assert p.cfg.auth.enabled and p.cfg.auth.root_access_key_id, p.service
        assert p.cfg.auth.root_secret_file, p.service
    roots = {p.cfg.auth.root_access_key_id for p in processes}
    assert len(roots) == 1, f"one root key serves both clusters: {roots}"
    maps = {p.cluster: p.cfg for p in processes}
    for cluster, cfg in maps.items():
        for remote in cfg.remotes:
            # The other cluster's replication principal, which its map names.
            assert remote.access_key_id == maps[remote.name].auth.replication_access_key_id
            assert remote.secret_file, f"{cluster}: [[remotes]] {remote.name}: its sealed secret"


def test_init_makes_every_secret_before_anyone_starts(processes: list[Process]) -> None:
    """One one-shot container, `tristore admin bootstrap` for both clusters,
    writes the CA (in a volume nobody else mounts), each cluster's keys and
    certificates (in the volumes the processes mount where their maps say);
    every process waits for it."""
    services = _services()
    init = services[INIT]
    assert _is_init(init) and init["restart"] == "on-failure", "runs once (again if it failed)"
    assert init.get("network_mode") == "none", "it needs no network"
    cmd = init["command"]
    assert cmd[:2] == ["admin", "bootstrap"]
    assert cmd[cmd.index("--ca-dir") + 1] == CA_IN_INIT
    mounts = _mounts(init)
    assert mounts[CA_IN_INIT] == "ca" and f"ca:{CA_IN_INIT}" in init["volumes"]
    assert _dockerfile_makes(CA_IN_INIT)
    others = [name for name, svc in services.items() if name != INIT]
    assert not any("ca" in _mounts(services[n]).values() for n in others), "the CA key: init only"
    paths = _init_configs()
    assert set(paths) == set(CLUSTERS)
    for p in processes:
        mine = _in_container(p.cfg, CONFIG_IN_CONTAINER)
        theirs = _in_container(p.cfg, paths[p.cluster])
        # What init writes for the cluster lands where the process reads it.
        for path_mine, path_init in (
            (mine.kms_key_file.parent, theirs.kms_key_file.parent),
            (mine.tls_files(p.name).cert.parent, theirs.tls_files(p.name).cert.parent),
        ):
            assert mounts[str(path_init)] == f"{p.cluster}-{path_init.name}", path_init
            assert f"{mounts[str(path_init)]}:{path_init}" in init["volumes"], "writable"
            assert _dockerfile_makes(str(path_init)) and _dockerfile_makes(str(path_mine))
        deps = services[p.service].get("depends_on", {})
        if p.role == "replicator":
            # The short form: it starts after the nodes, which wait for init.
            assert all(services[d]["depends_on"][INIT] for d in deps), p.service
        else:
            assert deps[INIT] == {"condition": "service_completed_successfully"}, p.service


def test_every_process_mounts_its_certificate_and_keys(processes: list[Process]) -> None:
    """Each process reads its certificate, key and the CA from its cluster's
    tls volume, read-only; nodes and replicators (which unseal the root and
    replication keys) the cluster's keys volume, writable by nodes only (`admin
    kms rotate` adds a master key and re-seals); witnesses no master key."""
    services = _services()
    for p in processes:
        svc = services[p.service]
        cfg = _in_container(p.cfg, CONFIG_IN_CONTAINER)
        files = cfg.tls_files(p.name)
        assert files.cert is not None and files.key is not None
        tls_dir = files.cert.parent
        assert {files.ca.parent, files.key.parent} == {tls_dir}, p.service
        assert f"{p.cluster}-tls:{tls_dir}:ro" in svc["volumes"], p.service
        keys = cfg.kms_key_file.parent
        sealed = [cfg.relative(cfg.auth.root_secret_file)]
        sealed += [cfg.relative(r.secret_file) for r in cfg.remotes]
        assert {f.parent for f in sealed} == {keys}, f"{p.service}: sealed secrets beside the keys"
        volume = f"{p.cluster}-keys:{keys}"
        if p.role == "node":
            assert volume in svc["volumes"], f"{p.service}: mount {volume} writable"
        elif p.role == "replicator":
            assert f"{volume}:ro" in svc["volumes"], f"{p.service}: mount {volume} read-only"
        else:
            assert str(keys) not in _mounts(svc), f"{p.service}: a witness needs no master key"


def test_bootstrap_as_init_runs_it_gives_each_process_what_it_reads(
    processes: list[Process], tmp_path: Path
) -> None:
    """`tristore admin bootstrap` run as the init container runs it (its mounts
    made under tmp_path): every process finds a certificate naming its role and
    its service, a 0600 key, the CA; no CA key beside them; both clusters open
    one root key and each other's replication key; a second run changes nothing."""
    from cryptography import x509

    from tristore import credentials, tls
    from tristore.cli.bootstrap import bootstrap

    # The maps' paths are relative to the file: as if it were read at tmp_path/PATH.
    cfgs = [
        _in_container(config.load(DEPLOY / f"compose/{c}.toml", env={}), f"{tmp_path}{path}")
        for c, path in _init_configs().items()
    ]
    made = bootstrap(cfgs, tmp_path / CA_IN_INIT.lstrip("/"))
    assert len(made["certificates"]) == len(processes)
    assert bootstrap(cfgs, tmp_path / CA_IN_INIT.lstrip("/")) == {
        "master_keys": [], "certificates": [], "sealed_secrets": []
    }  # fmt: skip
    by_name = {c.cluster.name: c for c in cfgs}
    for p in processes:
        cfg = by_name[p.cluster]
        files = cfg.tls_files(p.name)
        assert files.cert is not None and files.key is not None
        assert files.key.stat().st_mode & 0o777 == 0o600, files.key
        assert not (files.cert.parent / "ca.key").exists(), "the CA key stays in init's volume"
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        assert uris == [tls.Identity(p.cluster, p.role, p.name).uri], p.service
        assert p.service in san.get_values_for_type(x509.DNSName), p.service
        assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        assert files.ca.read_bytes() == (tmp_path / CA_IN_INIT.lstrip("/") / "ca.crt").read_bytes()
    for cfg in cfgs:
        for path in cfg.kms_key_file.parent.iterdir():
            assert path.stat().st_mode & 0o777 == 0o600, path
    roots = {credentials.root_credentials(c) for c in cfgs}
    assert len(roots) == 1 and None not in roots
    east, west = by_name["east"], by_name["west"]
    assert credentials.remote_credentials(east, east.remote_named("west")) == Credentials(
        west.auth.replication_access_key_id,
        credentials.read_sealed_file(
            west.relative(west.auth.replication_secret_file),
            LocalKeyFile(west.kms_key_file),
            west.auth.replication_access_key_id,
        ),
    )


# ------------------------------------------------------- compose <-> cluster maps


def test_cluster_maps_name_exactly_the_processes_compose_runs(
    processes: list[Process],
) -> None:
    for cluster in CLUSTERS:
        procs = [p for p in processes if p.cluster == cluster]
        # One map a cluster: the same file for every process of it.
        paths = {p.cfg.path for p in procs}
        assert len(paths) == 1, f"{cluster}: processes read different maps {paths}"
        assert Path(next(iter(paths))).name == f"{cluster}.toml"
        cfg = procs[0].cfg
        assert cfg.cluster.name == cluster
        in_map = {
            *(("node", n.name, n.az) for n in cfg.nodes),
            *(("witness", w.name, None) for w in cfg.witnesses),
            *(("replicator", r.name, None) for r in cfg.replicators),
        }
        in_compose = {(p.role, p.name, p.az) for p in procs}
        assert in_compose == in_map
        assert len(cfg.nodes) == 6 and cfg.azs == ("az-a", "az-b", "az-c")
        assert [len(g) for g in cfg.witness_groups] == [3]
        assert len(cfg.replicators) == 2
        for spec in (*cfg.nodes, *cfg.witnesses, *cfg.replicators):
            service = f"{cluster}-{spec.name}"
            assert spec.grpc == f"{service}:{GRPC_PORT}", spec
            assert spec.metrics == f"{service}:{METRICS_PORT}", spec
    ids = {p.cluster: p.cfg.cluster.id for p in processes}
    assert len(set(ids.values())) == len(CLUSTERS), f"clusters need distinct ids: {ids}"


def test_each_process_listens_on_all_its_networks(processes: list[Process]) -> None:
    """A process binds its own address; its container maps that name to 0.0.0.0,
    else it would listen on one network only and miss peers on the others."""
    services = _services()
    for p in processes:
        assert f"{p.service}:0.0.0.0" in services[p.service].get("extra_hosts", []), p.service


def test_remotes_are_the_other_clusters_nodes(processes: list[Process]) -> None:
    maps = {p.cluster: p.cfg for p in processes}
    for cluster, cfg in maps.items():
        (other,) = set(CLUSTERS) - {cluster}
        assert [r.name for r in cfg.remotes] == [other]
        assert set(cfg.remote_named(other).endpoint_list) == {n.grpc for n in maps[other].nodes}


def test_az_labels_and_networks(processes: list[Process]) -> None:
    for p in processes:
        labels = _services()[p.service]["labels"]
        assert labels["tristore.role"] == p.role and labels["tristore.process"] == p.name
        if p.role != "node":
            assert p.az is None, f"{p.service}: only nodes belong to an AZ"
            continue
        assert p.az == p.cfg.node_named(p.name).az
        az_net = f"{p.cluster}-{p.az}"
        assert az_net in _networks(p.service), f"{p.service}: not on its AZ's network"
        on_az_net = {q.service for q in processes if az_net in _networks(q.service)}
        expected = {q.service for q in processes if (q.cluster, q.az) == (p.cluster, p.az)}
        assert on_az_net == expected, f"{az_net} must hold that AZ's nodes only"


def test_everyone_reaches_whom_it_must(processes: list[Process]) -> None:
    def reaches(a: str, b: str) -> bool:
        return bool(_networks(a) & _networks(b))

    for p in processes:
        same = [q for q in processes if q.cluster == p.cluster]
        if p.role == "node":
            # Writes go to every AZ; reads and writes ask the witnesses.
            for q in same:
                if q.role in ("node", "witness"):
                    assert reaches(p.service, q.service), f"{p.service} -> {q.service}"
        if p.role == "replicator":
            for q in same:
                if q.role == "node":
                    assert reaches(p.service, q.service), f"{p.service} -> {q.service}"
            for remote in p.cfg.remotes:
                for ep in remote.endpoint_list:
                    host = ep.rsplit(":", 1)[0]
                    assert reaches(p.service, host), f"{p.service} -> {host} (remote)"
        assert reaches("prometheus", p.service), f"prometheus cannot scrape {p.service}"
    assert reaches("grafana", "prometheus")


def test_nodes_publish_grpc_s3_and_door_on_distinct_loopback_ports(
    processes: list[Process],
) -> None:
    host_ports = []
    for p in processes:
        ports = _services()[p.service].get("ports", [])
        if p.role != "node":
            assert not ports, f"{p.service}: only nodes serve clients"
            continue
        (node,) = [n for n in p.cfg.nodes if n.name == p.name]
        assert node.s3 == f"{p.service}:{S3_PORT}", f"{p.service}: its S3 API on {S3_PORT}"
        published = {}
        for spec in ports:
            host, host_port, container_port = str(spec).split(":")
            assert host == "127.0.0.1", spec
            published[int(container_port)] = int(host_port)
        door = GRPC_PORT + p.cfg.tls.door_port_offset
        assert set(published) == {GRPC_PORT, S3_PORT, door}, ports
        # A client finds the door at its gRPC port + the offset, on the host too.
        assert published[door] == published[GRPC_PORT] + DOOR_PORT_OFFSET, ports
        host_ports += published.values()
    assert len(set(host_ports)) == len(host_ports) == 36


# --------------------------------------------------------------- monitoring


def test_services_match_prometheus_targets(processes: list[Process]) -> None:
    targets = {host: (port, labels) for host, port, labels in _prometheus_targets()}
    assert set(targets) == {p.service for p in processes}
    for p in processes:
        port, labels = targets[p.service]
        assert port == METRICS_PORT
        assert labels["cluster"] == p.cluster and labels["role"] == p.role, p.service
        if p.role == "node":
            assert labels["az"] == p.az, p.service
        elif p.role == "witness":
            assert labels["az"] == f"group-{p.cfg.witness_named(p.name).group}", p.service
        else:
            assert "az" not in labels, p.service


def test_prometheus_and_grafana_get_their_config() -> None:
    services = _services()
    prom = _mounts(services["prometheus"])
    assert (DEPLOY / prom["/etc/prometheus"]).resolve() == DEPLOY / "prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = _mounts(services["grafana"])
    assert (DEPLOY / grafana["/etc/grafana/provisioning"]).resolve() == (
        DEPLOY / "grafana" / "provisioning"
    )
    assert (DEPLOY / grafana["/var/lib/grafana/dashboards"]).resolve() == (
        DEPLOY / "grafana" / "dashboards"
    )


# ------------------------------------------------------------ image sources


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_has_what_the_deployment_relies_on() -> None:
    ins = _instructions()
    words = [w for w, _ in ins]
    assert ins[0] == ("ARG", "BASE_IMAGE=python:3.11-slim"), "ARG BASE_IMAGE comes first"
    assert ("FROM", "${BASE_IMAGE}") in ins
    users = [a for w, a in ins if w == "USER"]
    assert users and users[-1] == f"{UID}:{UID}", "run as the non-root UID of deploy/k8s"
    assert ("VOLUME", "/var/lib/tristore") in ins
    (health,) = [a for w, a in ins if w == "HEALTHCHECK"]
    assert "/healthz" in health and f"HEALTH_PORT:-{METRICS_PORT}" in health
    assert ("ENTRYPOINT", '["tristore"]') in ins
    # The build reaches no index: only the wheelhouse.
    (run,) = [a for w, a in ins if w == "RUN" and "pip install" in a]
    assert "--no-index" in run and "--find-links /tmp/wheelhouse" in run
    assert words.index("USER") > words.index("RUN"), "install as root, then drop privileges"
    lines = (DEPLOY / ".dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore == ["*", "!wheelhouse/"], "only the wheelhouse goes into the build context"


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_healthcheck_command_reads_the_healthz_status(status: int, healthy: bool) -> None:
    """The image's HEALTHCHECK, run as Docker runs it (its JSON exec form),
    against a /healthz that answers ``status``; and with nothing listening."""
    (health,) = [a for w, a in _instructions() if w == "HEALTHCHECK"]
    argv = json.loads(health[health.index("CMD") + 3 :])
    handler = type("H", (_Healthz,), {"status": status})
    with http.server.HTTPServer(("127.0.0.1", 0), handler) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        env = {"PATH": os.environ["PATH"], "TRISTORE_HEALTH_PORT": str(srv.server_port)}
        proc = subprocess.run(argv, env=env, capture_output=True, timeout=10)
        srv.shutdown()
    assert (proc.returncode == 0) == healthy, proc.stderr
    env["TRISTORE_HEALTH_PORT"] = str(srv.server_port)  # closed now: refused
    assert subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode != 0


def test_base_image_script_parses() -> None:
    proc = subprocess.run(["bash", "-n", str(BASE_IMAGE_SH)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = BASE_IMAGE_SH.read_text()
    assert "set -euo pipefail" in text
    assert "debootstrap" in text and "docker import" in text
    # The mirror comes from apt's own configuration at run time, never from here.
    assert "://" not in text
