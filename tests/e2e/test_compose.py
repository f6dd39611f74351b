"""The docker compose deployment, for real: build offline, bring it up, use it.

Runs deploy/compose.sh up (what ``make compose-up`` runs): the base image
from Debian packages (deploy/base-image.sh, unless the tag already exists), a
wheelhouse of the checkout and the tristore image on that base, with no
container registry; both clusters of deploy/docker-compose.yml (Prometheus
from an image built from Debian's package, checked through its HTTP API;
Grafana when its image is already on the machine: nothing is pulled); every
container's healthcheck; the export lines it prints, the ones ``tristore dev
up`` prints: https endpoints, the stack's CA, real root keys. Checks that the
stack is closed (no answer without a signature, over gRPC or S3; none in
plaintext; none to a client that does not verify against the CA). Then
writes through east's published ports with the SDK, the CLI and boto3 (the
S3 HTTP API), all configured by those export lines only, reads the replicas
on west; stops one node container and keeps writing and
reading; asks `admin status`, drains and undrains a node (a cluster map change
spread across containers); and always tears the stack down (``down -v``).

Without a reachable Docker daemon the test skips, or fails under
TRISTORE_E2E=1 (CI that promises to run it). TRISTORE_E2E_BASE_IMAGE=TAG uses
an existing base image (``python:3.11-slim`` where a registry is reachable).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tristore import errors
from tristore.client import Client
from tristore.credentials import Credentials

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
#: east a1's S3 HTTP API (HTTPS, like gRPC).
EAST_S3 = "https://127.0.0.1:7301"
#: What `tristore dev up` prints for a TLS cluster with keys, and so compose.sh.
EXPORTS = {
    "TRISTORE_ENDPOINT", "TRISTORE_CA_BUNDLE", "TRISTORE_ACCESS_KEY_ID",
    "TRISTORE_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE",
}  # fmt: skip
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
    #: What `compose.sh up` told the user to export.
    exports: dict[str, str]

    def client(self, endpoint: str = EAST, **kwargs: Any) -> Client:
        """An SDK client configured by the export lines (CA and root key)."""
        kwargs.setdefault("ca_file", self.exports["TRISTORE_CA_BUNDLE"])
        kwargs.setdefault(
            "credentials",
            Credentials(
                self.exports["TRISTORE_ACCESS_KEY_ID"], self.exports["TRISTORE_SECRET_ACCESS_KEY"]
            ),
        )
        return Client(endpoint, **kwargs)

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
    st = Stack(compose, env, list(spec), servers, {})
    script = ["bash", str(DEPLOY / "compose.sh")]
    _run([*script, "down", "-v"], env=env, timeout=300)  # a previous run's leftovers
    try:
        up = _run([*script, "up"], env=env, timeout=1500)
        printed = dict(
            line.removeprefix("export ").split("=", 1)
            for line in up.stdout.splitlines()
            if line.startswith("export ")
        )
        assert set(printed) == EXPORTS, up.stdout
        assert printed["TRISTORE_ENDPOINT"] == EAST, up.stdout
        assert printed["AWS_ENDPOINT_URL"] == EAST_S3, up.stdout
        ca = Path(printed["TRISTORE_CA_BUNDLE"])
        assert printed["AWS_CA_BUNDLE"] == str(ca) and b"BEGIN CERTIFICATE" in ca.read_bytes()
        assert printed["AWS_ACCESS_KEY_ID"] == printed["TRISTORE_ACCESS_KEY_ID"]
        assert printed["AWS_SECRET_ACCESS_KEY"] == printed["TRISTORE_SECRET_ACCESS_KEY"]
        assert len(printed["TRISTORE_SECRET_ACCESS_KEY"]) >= 32, "a generated secret"
        st.exports.update(printed)
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


def _clean_env() -> dict[str, str]:
    """This process's environment without any tristore or AWS setting: what
    a test passes is all a client gets."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRISTORE_", "AWS_"))}


def _cli_run(
    exports: dict[str, str], endpoint: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", "--endpoint", endpoint, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env={**_clean_env(), **exports},
    )


def _cli(stack: Stack, endpoint: str, *args: str, stdin: bytes | None = None) -> bytes:
    """The CLI with the export lines of compose.sh up in its environment."""
    proc = _cli_run(stack.exports, endpoint, *args, stdin=stdin)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _s3(env: dict[str, str], **kwargs: Any) -> Any:
    """boto3 configured by ``env`` alone (AWS_ENDPOINT_URL, the keys, the
    region, AWS_CA_BUNDLE), as a user's shell would configure it."""
    import boto3
    from botocore.config import Config

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({**_clean_env(), **env})
    try:
        return boto3.session.Session().client(
            "s3",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, **kwargs),
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)


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


def test_the_stack_is_closed_without_keys_or_tls(stack: Stack) -> None:
    """No signature, no answer (gRPC and S3); a wrong secret neither; no
    plaintext; no answer to a client that does not verify the nodes against
    the stack's CA."""
    from botocore import UNSIGNED
    from botocore.exceptions import ClientError, SSLError

    ca = stack.exports["TRISTORE_CA_BUNDLE"]
    with stack.client() as root:
        bucket = f"e2e-closed-{uuid.uuid4().hex[:8]}"
        root.create_bucket(bucket)
        root.put_object(bucket, "k", b"secret")
    # gRPC: anonymous, and signed with a wrong secret.
    with Client(EAST, ca_file=ca, anonymous=True, timeout=10) as anon:
        with pytest.raises(errors.AccessDenied):
            anon.get_object(bucket, "k")
        with pytest.raises(errors.AccessDenied):
            anon.create_bucket(f"{bucket}-anon")
    forged = Credentials(stack.exports["TRISTORE_ACCESS_KEY_ID"], "not-the-secret")
    with (
        stack.client(credentials=forged, timeout=10) as c,
        pytest.raises(errors.SignatureDoesNotMatch),
    ):
        c.get_object(bucket, "k")
    # The CLI without keys: refused, with the S3 code on stderr.
    no_keys = {k: v for k, v in stack.exports.items() if "KEY" not in k}
    proc = _cli_run(no_keys, EAST, "cat", f"s3://{bucket}/k")
    assert proc.returncode == 1 and proc.stderr.startswith(b"AccessDenied"), proc.stderr
    # S3: unsigned requests, and signed with a wrong secret.
    s3_env = {k: v for k, v in stack.exports.items() if k.startswith("AWS_")}
    with pytest.raises(ClientError) as e:
        _s3(s3_env, signature_version=UNSIGNED).get_object(Bucket=bucket, Key="k")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as e:
        _s3({**s3_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}).get_object(
            Bucket=bucket, Key="k"
        )
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # Plaintext gets no answer, on either door.
    plain = stack.client(insecure=True, ca_file=None, timeout=5)
    with plain, pytest.raises(errors.ServiceUnavailable):
        plain.get_object(bucket, "k")
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:7301/{bucket}/k", timeout=10)
    # Nor does a client that verifies against other roots (its public ones).
    unverified = stack.client(ca_file=None, timeout=5)
    with unverified, pytest.raises(errors.ServiceUnavailable):
        unverified.get_object(bucket, "k")
    with pytest.raises(SSLError):
        _s3({k: v for k, v in s3_env.items() if k != "AWS_CA_BUNDLE"}).get_object(
            Bucket=bucket, Key="k"
        )
    # The root key through S3 reads what the SDK wrote.
    assert _s3(s3_env).get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"


def test_write_east_read_west_survive_a_node(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:8]
    src, dst = f"e2e-src-{tag}", f"e2e-dst-{tag}"
    with stack.client(EAST) as east, stack.client(WEST) as west:
        east.create_bucket(src)
        east.put_bucket_versioning(src, "Enabled")
        west.create_bucket(dst)
        west.put_bucket_versioning(dst, "Enabled")
        _cli(stack, EAST, "replication", "put", f"s3://{src}", "--to", f"west/{dst}")

        written: dict[str, bytes] = {}
        _cli(stack, EAST, "cp", "-", f"s3://{src}/cli.txt", stdin=b"through the CLI\n")
        written["cli.txt"] = b"through the CLI\n"
        for i in range(10):
            body = os.urandom(100 + i * 20_000)  # inline and chunked bodies
            east.put_object(src, f"before/{i}", body)
            written[f"before/{i}"] = body
        assert _cli(stack, EAST, "cat", f"s3://{src}/cli.txt") == b"through the CLI\n"
        # The S3 HTTP API on east's published port: one door writes, the other reads.
        s3 = _s3({k: v for k, v in stack.exports.items() if k.startswith("AWS_")})
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
        status = json.loads(_cli(stack, EAST, "admin", "status", "--json"))
        up = {n["name"]: n["up"] for n in status["nodes"]}
        assert up.pop("a1") is False and all(up.values()), status["nodes"]
        assert {r["name"] for r in status["replicators"] if r["up"]} == {"r1", "r2"}
        _cli(stack, EAST, "admin", "drain", "b2", "--timeout", "50")
        for key, body in written.items():
            assert east.get_object(src, key) == body, key
        _cli(stack, EAST, "admin", "undrain", "b2")
        status = json.loads(_cli(stack, EAST, "admin", "status", "--json"))
        assert status["epoch"] >= 3
        assert {n["status"]["epoch"] for n in status["nodes"] if n["up"]} == {status["epoch"]}
