"""The docker compose deployment, for real: build offline, bring it up, use it.

Runs deploy/compose.sh up (what ``make compose-up`` runs): the base image
from Debian packages (deploy/base-image.sh, unless the tag already exists), a
wheelhouse of the checkout and the tristore image on that base, with no
container registry; both clusters of deploy/docker-compose.yml (Prometheus
from an image built from Debian's package, checked through its HTTP API;
Grafana when its image is already on the machine: nothing is pulled); every
container's healthcheck; the export lines it prints. Then writes through
east's published ports with the SDK, the CLI and boto3 (the S3 HTTP API),
reads the replicas on west; stops one node container and keeps writing and
reading; asks `admin status`, drains and undrains a node (a cluster map change
spread across containers); and always tears the stack down (``down -v``).

Without a reachable Docker daemon the test skips, or fails under
TRISTORE_E2E=1 (CI that promises to run it). TRISTORE_E2E_BASE_IMAGE=TAG uses
an existing base image (``python:3.11-slim`` where a registry is reachable).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tristore.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
BASE_IMAGE = os.environ.get("TRISTORE_E2E_BASE_IMAGE", "tristore-base:bookworm")
APP_IMAGE = "tristore:e2e"
PROMETHEUS_IMAGE = "tristore-prometheus:e2e"
PROMETHEUS = "http://127.0.0.1:9090"
PROJECT = "tristore-e2e"
#: Services without a healthcheck of ours, started only if their images are here.
MONITORING = ("prometheus", "grafana")
#: Host ports the compose file publishes the nodes' gRPC on (a1 a2 b1 b2 c1 c2).
EAST = ",".join(f"127.0.0.1:{p}" for p in range(7101, 7107))
WEST = ",".join(f"127.0.0.1:{p}" for p in range(7111, 7117))
#: east a1's S3 HTTP API (plain HTTP in this stack; signing is off).
EAST_S3 = "http://127.0.0.1:7301"
HEALTH_TIMEOUT_S = 240
REPLICATION_TIMEOUT_S = 60


def _unavailable(reason: str) -> None:
    if os.environ.get("TRISTORE_E2E") == "1":
        pytest.fail(f"TRISTORE_E2E=1 but {reason}")
    pytest.skip(f"{reason} (TRISTORE_E2E=1 makes this a failure)")


def _run(
    cmd: list[str], *, timeout: float = 600, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def _compose_command() -> list[str]:
    if shutil.which("docker") is None:
        _unavailable("the docker CLI is not installed (apt-get install docker.io)")
    info = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30, check=False)
    if info.returncode != 0:
        why = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        _unavailable(f"no Docker daemon answers: {why}")
    if _run(["docker", "compose", "version"], timeout=30, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    _unavailable("neither `docker compose` nor docker-compose is installed")
    raise AssertionError("unreachable")


def _expand(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR:-default}`` substitution, the only form the file uses."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), value)


def _image_exists(tag: str) -> bool:
    return _run(["docker", "image", "inspect", tag], timeout=30, check=False).returncode == 0


@dataclass
class Stack:
    compose: list[str]
    env: dict[str, str]
    services: list[str]
    #: The tristore processes among them (not monitoring, not one-shot).
    servers: list[str]

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return _run(
            [*self.compose, "-f", str(COMPOSE_FILE), "-p", PROJECT, *args],
            timeout=timeout,
            env=self.env,
        )

    def health(self) -> dict[str, str]:
        """Service -> its container's health status."""
        ids = self("ps", "-q").stdout.split()
        if not ids:
            return {}
        fmt = (
            '{{index .Config.Labels "com.docker.compose.service"}} '
            "{{if not .State.Running}}{{.State.Status}}"
            "{{else if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}"
        )
        out = _run(["docker", "inspect", "--format", fmt, *ids]).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """``make compose-up``'s script, as a user runs it: images, both clusters,
    every healthcheck; its export lines name east's endpoints. Always ``down -v``."""
    compose = _compose_command()
    if not _image_exists(BASE_IMAGE) and (os.geteuid() != 0 or shutil.which("debootstrap") is None):
        _unavailable(f"base image {BASE_IMAGE} is missing and building it needs root + debootstrap")
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": PROJECT,
        "TRISTORE_IMAGE": APP_IMAGE,
        "BASE_IMAGE": BASE_IMAGE,
        "PROMETHEUS_IMAGE": PROMETHEUS_IMAGE,
        "HEALTH_TIMEOUT_S": str(HEALTH_TIMEOUT_S),
        "PYTHON": sys.executable,
    }
    spec = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    # One-shot containers (CL-init makes the master keys) exit once done.
    one_shot = {name for name, svc in spec.items() if svc.get("restart") == "on-failure"}
    servers = [s for s in spec if s not in (*MONITORING, *one_shot)]
    st = Stack(compose, env, list(spec), servers)
    script = ["bash", str(DEPLOY / "compose.sh")]
    _run([*script, "down", "-v"], env=env, timeout=300)  # a previous run's leftovers
    try:
        up = _run([*script, "up"], env=env, timeout=1500)
        printed = dict(
            line.removeprefix("export ").split("=", 1)
            for line in up.stdout.splitlines()
            if line.startswith("export ")
        )
        assert printed["TRISTORE_ENDPOINT"] == EAST, up.stdout
        assert printed["TRISTORE_INSECURE"] == "1" and printed["AWS_ENDPOINT_URL"] == EAST_S3
        health = st.health()
        assert all(health.get(s) == "healthy" for s in servers), health
        yield st
    finally:
        _run([*script, "down", "-v"], env=env, timeout=300)


def _wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception as e:  # noqa: BLE001 - not there yet; report the last one
            last = e
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


def _cli(endpoint: str, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(
        [sys.executable, "-m", "tristore", "--endpoint", endpoint, "--insecure", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _s3(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="compose",  # signing is off in the compose stack: any pair
        aws_secret_access_key="compose-signing-is-off",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def _prometheus(path: str) -> Any:
    with urllib.request.urlopen(f"{PROMETHEUS}{path}", timeout=10) as resp:
        doc = json.loads(resp.read())
    assert doc["status"] == "success", doc
    return doc["data"]


def test_prometheus_scrapes_every_process(stack: Stack) -> None:
    """Prometheus inside the stack (built from Debian's package) scrapes all 22
    tristore containers, with the labels the alerts and the dashboard use, and
    has loaded the alert rules."""
    tristore = set(stack.servers)

    def all_up() -> bool:
        targets = _prometheus("/api/v1/targets?state=active")["activeTargets"]
        up = {
            f"{t['labels']['cluster']}-{t['labels']['process']}"
            for t in targets
            if t["health"] == "up" and "process" in t["labels"]  # not Prometheus itself
        }
        return up >= tristore

    _wait_for(all_up, 120, "every tristore container scraped up")
    epochs = _prometheus("/api/v1/query?query=tristore_node_cluster_map_epoch")["result"]
    assert len(epochs) == 12  # six nodes a cluster
    assert {r["metric"]["role"] for r in epochs} == {"node"}
    # `up` of every target by role (Prometheus's own target has none).
    roles = _prometheus("/api/v1/query?query=count%20by%20(role)%20(up)")["result"]
    assert {r["metric"]["role"]: int(r["value"][1]) for r in roles if "role" in r["metric"]} == {
        "node": 12,
        "witness": 6,
        "replicator": 4,
    }
    rules = _prometheus("/api/v1/rules")["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"TristoreNodeDown", "TristoreAZDown", "TristoreReplicationDLQNotEmpty"} <= names


def test_write_east_read_west_survive_a_node(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:8]
    src, dst = f"e2e-src-{tag}", f"e2e-dst-{tag}"
    with Client(EAST, insecure=True) as east, Client(WEST, insecure=True) as west:
        east.create_bucket(src)
        east.put_bucket_versioning(src, "Enabled")
        west.create_bucket(dst)
        west.put_bucket_versioning(dst, "Enabled")
        _cli(EAST, "replication", "put", f"s3://{src}", "--to", f"west/{dst}")

        written: dict[str, bytes] = {}
        _cli(EAST, "cp", "-", f"s3://{src}/cli.txt", stdin=b"through the CLI\n")
        written["cli.txt"] = b"through the CLI\n"
        for i in range(10):
            body = os.urandom(100 + i * 20_000)  # inline and chunked bodies
            east.put_object(src, f"before/{i}", body)
            written[f"before/{i}"] = body
        assert _cli(EAST, "cat", f"s3://{src}/cli.txt") == b"through the CLI\n"
        # The S3 HTTP API on east's published port: one door writes, the other reads.
        s3 = _s3(EAST_S3)
        s3.put_object(Bucket=src, Key="s3.txt", Body=b"through S3\n")
        written["s3.txt"] = b"through S3\n"
        assert east.get_object(src, "s3.txt") == b"through S3\n"
        assert s3.get_object(Bucket=src, Key="cli.txt")["Body"].read() == b"through the CLI\n"

        def replicated(keys: list[str]) -> Callable[[], bool]:
            return lambda: all(west.get_object(dst, k) == written[k] for k in keys)

        _wait_for(replicated(list(written)), REPLICATION_TIMEOUT_S, "the replicas on west")

        # One node of east goes away; east keeps taking writes and serving reads.
        stack("stop", "east-a1", timeout=120)
        assert stack.health().get("east-a1") == "exited"
        for i in range(10):
            body = os.urandom(100 + i * 20_000)
            east.put_object(src, f"after/{i}", body)
            written[f"after/{i}"] = body
        for key, body in written.items():
            assert east.get_object(src, key) == body, key
        _wait_for(replicated(list(written)), REPLICATION_TIMEOUT_S, "replicas of later writes")

        # The operator's view, and a change of the cluster map across containers.
        status = json.loads(_cli(EAST, "admin", "status", "--json"))
        up = {n["name"]: n["up"] for n in status["nodes"]}
        assert up.pop("a1") is False and all(up.values()), status["nodes"]
        assert {r["name"] for r in status["replicators"] if r["up"]} == {"r1", "r2"}
        _cli(EAST, "admin", "drain", "b2", "--timeout", "50")
        for key, body in written.items():
            assert east.get_object(src, key) == body, key
        _cli(EAST, "admin", "undrain", "b2")
        status = json.loads(_cli(EAST, "admin", "status", "--json"))
        assert status["epoch"] >= 3
        assert {n["status"]["epoch"] for n in status["nodes"] if n["up"]} == {status["epoch"]}
