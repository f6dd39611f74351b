"""The three servers bench/compare.py drives, behind one face.

Each system is started by a context manager that stops every process it
started on the way out, whatever happened:

- :func:`tristore_cluster`: a dev cluster through the real launcher
  (``python -m tristore dev up --dir D --base-port P``), ``dev down`` at the end;
- :func:`etcd_cluster`: three ``etcd`` members on 127.0.0.1, default fsync;
- :func:`echo_server`: ``python -m bench.echo``, the Python gRPC ceiling.

Every system gives the same things: ``pids()`` (server process id -> role, for
CPU accounting), ``ready()`` (waits, bounded, until it answers correctly) and
``session(worker)`` (one client with its own channel, for one worker). A
session has ``put``, ``get`` and ``get_hot``; the echo server answers all three
with a 1 KiB echo.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import grpc

from bench import tlsenv
from bench.echo import METHOD as ECHO_METHOD
from tristore import errors
from tristore.client import AsyncClient
from tristore.client._transport import CLIENT_CHANNEL_OPTIONS

HOST = "127.0.0.1"
BUCKET = "bench"
#: Deadline of one etcd or echo call; tristore's SDK has its own.
CALL_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
ETCD_PROTO = Path(__file__).resolve().with_name("etcd_kv.proto")


class Session(Protocol):
    """One worker's client. Every call raises on failure or a wrong answer."""

    async def warm(self) -> None: ...
    async def put(self, key: str, value: bytes) -> None: ...
    async def get(self, key: str, size: int) -> None: ...
    async def get_hot(self, key: str, size: int) -> None: ...
    async def close(self) -> None: ...


class System(Protocol):
    name: str
    #: What ``get_hot`` is for this system, written to the results.
    hot_mode: str

    def pids(self) -> dict[int, str]: ...
    async def ready(self) -> None: ...
    def session(self, worker: int) -> Session: ...


# -- ports and processes -------------------------------------------------------


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 (there is a small race
    until the server binds it; the start-up check catches a loser)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_base_port(count: int, metrics_offset: int = 100, tries: int = 200) -> int:
    """A base P for ``tristore dev up --base-port P``: P+1..P+count (gRPC) and
    P+offset+1..P+offset+count (metrics) all free. Below Linux's ephemeral range,
    so that ports the kernel hands out meanwhile do not land in it."""
    for _ in range(tries):
        base = random.randrange(20_000, 32_000 - 2 * metrics_offset)
        wanted = [base + i for i in range(1, count + 1)]
        wanted += [p + metrics_offset for p in wanted]
        if all(_port_free(p) for p in wanted):
            return base
    raise RuntimeError(f"no free block of {count} ports after {tries} tries")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; always reaps it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


def _tail(path: Path, n: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


async def _until_ready(what: str, check: Any, procs: list[subprocess.Popen[bytes]]) -> None:
    """Run ``await check()`` until it passes, bounded by READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: BaseException | None = None
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.pid} exited with {p.returncode}")
        try:
            await check()
            return
        except (grpc.RpcError, errors.TristoreError, OSError, AssertionError) as e:
            last = e
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {READY_TIMEOUT_S:.0f} s: {last!r}")


def _channel(address: str) -> grpc.aio.Channel:
    # The tristore SDK's own channel options, so that every system sees the same
    # client. Plaintext: the echo server and etcd here run without TLS.
    return grpc.aio.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS)


# -- echo ----------------------------------------------------------------------


class EchoSession:
    def __init__(self, address: str) -> None:
        self._channel = _channel(address)
        # No serializers: bytes in, bytes out.
        self._call = self._channel.unary_unary(ECHO_METHOD)

    async def _echo(self, value: bytes) -> None:
        reply = await self._call(value, timeout=CALL_TIMEOUT_S)
        if len(reply) != len(value):
            raise AssertionError(f"echo returned {len(reply)} bytes, sent {len(value)}")

    async def warm(self) -> None:
        await self._echo(b"x")

    async def put(self, key: str, value: bytes) -> None:
        await self._echo(value)

    async def get(self, key: str, size: int) -> None:
        await self._echo(_payload(size))

    async def get_hot(self, key: str, size: int) -> None:
        await self._echo(_payload(size))

    async def close(self) -> None:
        await self._channel.close()


_PAYLOADS: dict[int, bytes] = {}


def _payload(size: int) -> bytes:
    if size not in _PAYLOADS:
        _PAYLOADS[size] = os.urandom(size)
    return _PAYLOADS[size]


class Echo:
    name = "echo"
    hot_mode = "echo"

    def __init__(self, proc: subprocess.Popen[bytes], address: str) -> None:
        self._proc = proc
        self.address = address

    def pids(self) -> dict[int, str]:
        return {self._proc.pid: "echo"}

    async def ready(self) -> None:
        async def check() -> None:
            s = EchoSession(self.address)
            try:
                await s.put("", b"ping")
            finally:
                await s.close()

        await _until_ready("echo server", check, [self._proc])

    def session(self, worker: int) -> Session:
        return EchoSession(self.address)


@contextlib.contextmanager
def echo_server(workdir: Path) -> Iterator[Echo]:
    port = free_port()
    log = workdir / "echo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.echo", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
    try:
        yield Echo(proc, f"{HOST}:{port}")
    finally:
        stop_process(proc)


# -- etcd ----------------------------------------------------------------------


def load_etcd_stubs(out: Path) -> tuple[Any, Any]:
    """Generate etcd_kv.proto's Python code into ``out`` and import it."""
    from grpc_tools import protoc

    include = Path(protoc.__file__).resolve().parent / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{ETCD_PROTO.parent}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(ETCD_PROTO),
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed on {ETCD_PROTO} ({rc})")
    # The generated _grpc module imports its _pb2 sibling by its bare name.
    sys.path.insert(0, str(out))
    try:
        pb = importlib.import_module(f"{ETCD_PROTO.stem}_pb2")
        pb_grpc = importlib.import_module(f"{ETCD_PROTO.stem}_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return pb, pb_grpc


class EtcdSession:
    def __init__(self, address: str, pb: Any, pb_grpc: Any) -> None:
        self._pb = pb
        self._channel = _channel(address)
        self._kv = pb_grpc.KVStub(self._channel)

    async def _range(self, key: str, size: int, serializable: bool) -> None:
        resp = await self._kv.Range(
            self._pb.RangeRequest(key=key.encode(), serializable=serializable),
            timeout=CALL_TIMEOUT_S,
        )
        if len(resp.kvs) != 1 or len(resp.kvs[0].value) != size:
            raise AssertionError(f"etcd Range({key!r}): {len(resp.kvs)} kvs, not one of {size} B")

    async def warm(self) -> None:
        await self._kv.Range(
            self._pb.RangeRequest(key=b"warm", serializable=True), timeout=CALL_TIMEOUT_S
        )

    async def put(self, key: str, value: bytes) -> None:
        await self._kv.Put(
            self._pb.PutRequest(key=key.encode(), value=value), timeout=CALL_TIMEOUT_S
        )

    async def get(self, key: str, size: int) -> None:
        await self._range(key, size, serializable=False)

    async def get_hot(self, key: str, size: int) -> None:
        await self._range(key, size, serializable=True)

    async def close(self) -> None:
        await self._channel.close()


class Etcd:
    name = "etcd"
    hot_mode = "serializable (member-local, may be stale)"

    def __init__(
        self, procs: list[subprocess.Popen[bytes]], addresses: list[str], pb: Any, pb_grpc: Any
    ) -> None:
        self._procs = procs
        self.addresses = addresses
        self._pb, self._pb_grpc = pb, pb_grpc

    def pids(self) -> dict[int, str]:
        return {p.pid: "etcd" for p in self._procs}

    async def ready(self) -> None:
        """Every member serves a linearizable Range, and a Put read back through
        another member comes back whole: the hand-written proto matches etcd's."""

        async def check() -> None:
            value = b"v" * 1024
            first = EtcdSession(self.addresses[0], self._pb, self._pb_grpc)
            try:
                put = await first._kv.Put(
                    self._pb.PutRequest(key=b"bench/ready", value=value), timeout=2
                )
                assert put.header.revision > 0 and put.header.cluster_id != 0, put
            finally:
                await first.close()
            for address in self.addresses:
                s = EtcdSession(address, self._pb, self._pb_grpc)
                try:
                    resp = await s._kv.Range(self._pb.RangeRequest(key=b"bench/ready"), timeout=2)
                    assert len(resp.kvs) == 1, resp
                    kv = resp.kvs[0]
                    assert kv.key == b"bench/ready" and kv.value == value, kv
                    assert kv.mod_revision >= put.header.revision and kv.version >= 1, kv
                finally:
                    await s.close()

        await _until_ready("etcd", check, self._procs)

    def session(self, worker: int) -> Session:
        return EtcdSession(self.addresses[worker % len(self.addresses)], self._pb, self._pb_grpc)


@contextlib.contextmanager
def etcd_cluster(workdir: Path, pb: Any, pb_grpc: Any, members: int = 3) -> Iterator[Etcd]:
    """``members`` etcd members on 127.0.0.1, each in its own data dir under
    ``workdir``, with etcd's defaults otherwise (fsync on every commit)."""
    names = [f"m{i}" for i in range(members)]
    client = {n: free_port() for n in names}
    peer = {n: free_port() for n in names}
    initial = ",".join(f"{n}=http://{HOST}:{peer[n]}" for n in names)
    # ETCD_* variables from the caller's environment would change the members.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in names:
            log = workdir / f"etcd-{n}.log"
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            "etcd",
                            f"--name={n}",
                            f"--data-dir={workdir / n}",
                            f"--listen-client-urls=http://{HOST}:{client[n]}",
                            f"--advertise-client-urls=http://{HOST}:{client[n]}",
                            f"--listen-peer-urls=http://{HOST}:{peer[n]}",
                            f"--initial-advertise-peer-urls=http://{HOST}:{peer[n]}",
                            f"--initial-cluster={initial}",
                            "--initial-cluster-state=new",
                            "--initial-cluster-token=tristore-bench",
                            "--logger=zap",
                            "--log-level=warn",
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
        yield Etcd(procs, [f"{HOST}:{client[n]}" for n in names], pb, pb_grpc)
    finally:
        for p in procs:
            stop_process(p)


# -- tristore ------------------------------------------------------------------


class TristoreSession:
    def __init__(self, address: str) -> None:
        self._client = AsyncClient(address)

    async def warm(self) -> None:
        await self._client.head_bucket(BUCKET)

    async def put(self, key: str, value: bytes) -> None:
        await self._client.put_object(BUCKET, key, value)

    async def get(self, key: str, size: int) -> None:
        data = await self._client.get_object(BUCKET, key)
        if len(data) != size:
            raise AssertionError(f"tristore GET {key!r}: {len(data)} bytes, not {size}")

    # tristore has no non-linearizable read: a GET of a hot key is the same
    # linearizable GET, served from the coordinator's metadata cache.
    get_hot = get

    async def close(self) -> None:
        await self._client.close()


class Tristore:
    name = "tristore"
    hot_mode = "linearizable, coordinator metadata cache (no relaxed read mode exists)"

    def __init__(self, status: list[dict[str, Any]]) -> None:
        self._status = status
        self.endpoints = [p["grpc"] for p in status if p["role"] == "node"]

    def pids(self) -> dict[int, str]:
        return {int(p["pid"]): str(p["role"]) for p in self._status if p["pid"]}

    async def ready(self) -> None:
        async def check() -> None:
            async with AsyncClient(",".join(self.endpoints)) as admin:
                with contextlib.suppress(errors.BucketAlreadyExists):
                    await admin.create_bucket(BUCKET)
                await admin.head_bucket(BUCKET)

        await _until_ready("tristore", check, [])

    def session(self, worker: int) -> Session:
        return TristoreSession(self.endpoints[worker % len(self.endpoints)])


def _tristore_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


@contextlib.contextmanager
def tristore_cluster(workdir: Path, processes: int = 11) -> Iterator[Tristore]:
    """The launcher's default dev cluster (six nodes in three AZs, witnesses,
    replicators) on a free block of ports; ``dev down`` on the way out."""
    base = free_base_port(processes)
    try:
        flags = tlsenv.setup()
        up = _tristore_cli("dev", "up", "--dir", str(workdir), "--base-port", str(base), *flags)
        if up.returncode != 0:
            raise RuntimeError(f"tristore dev up failed:\n{up.stdout}{up.stderr}")
        st = _tristore_cli("dev", "status", "--dir", str(workdir), "--json")
        status = json.loads(st.stdout)
        down = [p["name"] for p in status if not p["up"] or not p["pid"]]
        if down:
            raise RuntimeError(f"tristore processes not up: {down}")
        yield Tristore(status)
    finally:
        _tristore_cli("dev", "down", "--dir", str(workdir))
