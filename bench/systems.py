"""The servers bench/compare.py drives, behind one face.

Each system is started by a context manager that stops every process it
started on the way out, whatever happened:

- :func:`tristore_cluster`: a dev cluster through the real launcher
  (``python -m tristore dev up --dir D --base-port P``), ``dev down`` at the
  end; TLS and signed calls, or (``plain``) plaintext with signatures off;
  :class:`TristoreS3` drives the same cluster through its S3 HTTP door;
- :func:`etcd_cluster`: three ``etcd`` members on 127.0.0.1, default fsync;
  plaintext, or (``secure``) TLS for clients and peers with client
  certificates, issued by tristore.tls;
- :func:`echo_server`: ``python -m bench.echo``, the Python gRPC ceiling.

Every system gives the same things: ``pids()`` (server process id -> role, for
CPU accounting), ``ready()`` (waits, bounded, until it answers correctly) and
``sessions(conc)`` (one client a worker: its own gRPC channel, or for the S3
door a share of one pool of ``conc`` keep-alive connections). A session has
``put``, ``get`` and ``get_hot``; the echo server answers all three with a
1 KiB echo.
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

from bench import s3client, tlsenv
from bench.echo import METHOD as ECHO_METHOD
from tristore import credentials, errors, tls
from tristore.client import AsyncClient
from tristore.client._transport import CLIENT_CHANNEL_OPTIONS
from tristore.config import ClusterConfig
from tristore.config import load as load_config

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
    def sessions(self, conc: int) -> list[Session]: ...


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


#: The port blocks a dev cluster takes above its base (``tristore dev up``): gRPC,
#: metrics, S3 and the doors (nodes: [tls] door_port_offset), the internal gRPC
#: ports ([tls] internal_port_offset) and the pipe ports ([tls] pipe_port_offset).
DEV_PORT_OFFSETS = (0, 100, 500, 600, 1000, 1100)


def free_base_port(count: int, tries: int = 200) -> int:
    """A base P for ``tristore dev up --base-port P``: P+o+1..P+o+count free
    for every o of DEV_PORT_OFFSETS, so that a second cluster never lands on
    the first's ports. Below Linux's ephemeral range, so that ports the
    kernel hands out meanwhile do not land in it."""
    for _ in range(tries):
        base = random.randrange(20_000, 32_000 - 2 * DEV_PORT_OFFSETS[-1])
        wanted = [base + o + i for o in DEV_PORT_OFFSETS for i in range(1, count + 1)]
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


def _channel(address: str, creds: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
    # The tristore SDK's own channel options, so that every system sees the same
    # client. Plaintext unless given credentials (etcd with TLS).
    if creds is None:
        return grpc.aio.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(address, creds, options=CLIENT_CHANNEL_OPTIONS)


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

    def sessions(self, conc: int) -> list[Session]:
        return [EchoSession(self.address) for _ in range(conc)]


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
    def __init__(
        self, address: str, pb: Any, pb_grpc: Any, creds: grpc.ChannelCredentials | None = None
    ) -> None:
        self._pb = pb
        self._channel = _channel(address, creds)
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
    hot_mode = "serializable (member-local, may be stale)"

    def __init__(
        self,
        procs: list[subprocess.Popen[bytes]],
        addresses: list[str],
        pb: Any,
        pb_grpc: Any,
        tls_files: tls.Files | None = None,
    ) -> None:
        self._procs = procs
        self.addresses = addresses
        self._pb, self._pb_grpc = pb, pb_grpc
        #: Client TLS (the CA, and a client certificate: etcd asks for one).
        self._creds = tls.channel_credentials(tls_files) if tls_files is not None else None
        self.name = "etcd-tls" if tls_files is not None else "etcd"

    def _session(self, address: str) -> EtcdSession:
        return EtcdSession(address, self._pb, self._pb_grpc, self._creds)

    def pids(self) -> dict[int, str]:
        return {p.pid: "etcd" for p in self._procs}

    async def ready(self) -> None:
        """Every member serves a linearizable Range, and a Put read back through
        another member comes back whole: the hand-written proto matches etcd's."""

        async def check() -> None:
            value = b"v" * 1024
            first = self._session(self.addresses[0])
            try:
                put = await first._kv.Put(
                    self._pb.PutRequest(key=b"bench/ready", value=value), timeout=2
                )
                assert put.header.revision > 0 and put.header.cluster_id != 0, put
            finally:
                await first.close()
            for address in self.addresses:
                s = self._session(address)
                try:
                    resp = await s._kv.Range(self._pb.RangeRequest(key=b"bench/ready"), timeout=2)
                    assert len(resp.kvs) == 1, resp
                    kv = resp.kvs[0]
                    assert kv.key == b"bench/ready" and kv.value == value, kv
                    assert kv.mod_revision >= put.header.revision and kv.version >= 1, kv
                finally:
                    await s.close()

        await _until_ready(self.name, check, self._procs)

    def sessions(self, conc: int) -> list[Session]:
        return [self._session(self.addresses[w % len(self.addresses)]) for w in range(conc)]


def etcd_tls_flags(workdir: Path, name: str) -> list[str]:
    """The flags of a member that serves clients and peers over TLS with
    client certificates required on both (``--client-cert-auth``,
    ``--peer-client-cert-auth``), its certificate issued (by tristore.tls)
    from the CA in ``workdir/tls``, which :func:`etcd_client_tls` trusts."""
    ca_dir = workdir / "tls"
    ca = tls.ensure_ca(ca_dir, "etcd-bench")
    crt, key = ca_dir / f"{name}.crt", ca_dir / f"{name}.key"
    # One certificate for both sides: tristore.tls issues it for server and
    # client authentication, for 127.0.0.1 and localhost.
    tls.issue(ca_dir, crt, key, [HOST, "localhost"])
    return [
        f"--cert-file={crt}",
        f"--key-file={key}",
        f"--trusted-ca-file={ca}",
        "--client-cert-auth",
        f"--peer-cert-file={crt}",
        f"--peer-key-file={key}",
        f"--peer-trusted-ca-file={ca}",
        "--peer-client-cert-auth",
    ]


def etcd_client_tls(workdir: Path) -> tls.Files:
    """The CA and a client certificate for the members of ``etcd_tls_flags``."""
    ca_dir = workdir / "tls"
    files = tls.Files(ca_dir / "ca.crt", ca_dir / "client.crt", ca_dir / "client.key")
    assert files.cert is not None and files.key is not None
    if not files.cert.exists():
        tls.issue(ca_dir, files.cert, files.key, ["bench-client"])
    return files


@contextlib.contextmanager
def etcd_cluster(
    workdir: Path, pb: Any, pb_grpc: Any, members: int = 3, secure: bool = False
) -> Iterator[Etcd]:
    """``members`` etcd members on 127.0.0.1, each in its own data dir under
    ``workdir``, with etcd's defaults otherwise (fsync on every commit).
    ``secure``: clients and peers speak TLS with client certificates (mutual
    TLS, as tristore's processes among themselves), https URLs."""
    names = [f"m{i}" for i in range(members)]
    client = {n: free_port() for n in names}
    peer = {n: free_port() for n in names}
    scheme = "https" if secure else "http"
    initial = ",".join(f"{n}={scheme}://{HOST}:{peer[n]}" for n in names)
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
                            f"--listen-client-urls={scheme}://{HOST}:{client[n]}",
                            f"--advertise-client-urls={scheme}://{HOST}:{client[n]}",
                            f"--listen-peer-urls={scheme}://{HOST}:{peer[n]}",
                            f"--initial-advertise-peer-urls={scheme}://{HOST}:{peer[n]}",
                            f"--initial-cluster={initial}",
                            "--initial-cluster-state=new",
                            "--initial-cluster-token=tristore-bench",
                            "--logger=zap",
                            "--log-level=warn",
                            *(etcd_tls_flags(workdir, n) if secure else []),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
        files = etcd_client_tls(workdir) if secure else None
        yield Etcd(procs, [f"{HOST}:{client[n]}" for n in names], pb, pb_grpc, files)
    finally:
        for p in procs:
            stop_process(p)


# -- tristore ------------------------------------------------------------------


class TristoreSession:
    def __init__(self, address: str, plain: bool) -> None:
        # A plaintext cluster with authentication off is called as such:
        # no TLS and no signature. Otherwise the SDK's defaults, from the
        # environment: the bench CA (bench/tlsenv.py) and the bench key.
        kw: dict[str, Any] = {"insecure": True, "anonymous": True} if plain else {}
        self._client = AsyncClient(address, **kw)

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
    hot_mode = "linearizable, coordinator metadata cache (no relaxed read mode exists)"

    def __init__(self, status: list[dict[str, Any]], cfg: ClusterConfig, plain: bool) -> None:
        self._status = status
        self.endpoints = [p["grpc"] for p in status if p["role"] == "node"]
        self.plain = plain
        #: ``tristore-plain``: ``[tls] insecure`` and ``[auth] enabled = false``.
        self.name = "tristore-plain" if plain else "tristore"
        secure = not cfg.tls.insecure
        self.security = (
            "plaintext, unsigned (auth off)"
            if plain
            else ("TLS" if secure else "plaintext") + ", SigV4-signed calls"
        )
        self.s3 = s3client.Target(
            tuple(n.s3 for n in cfg.nodes if n.s3),
            str(cfg.relative(cfg.tls.ca_file)) if secure else None,
            None if plain else credentials.from_env(),
        )

    def pids(self) -> dict[int, str]:
        return {int(p["pid"]): str(p["role"]) for p in self._status if p["pid"]}

    async def ready(self) -> None:
        async def check() -> None:
            s = TristoreSession(",".join(self.endpoints), self.plain)
            try:
                with contextlib.suppress(errors.BucketAlreadyExists):
                    await s._client.create_bucket(BUCKET)
                await s._client.head_bucket(BUCKET)
            finally:
                await s.close()

        await _until_ready(self.name, check, [])

    def sessions(self, conc: int) -> list[Session]:
        n = len(self.endpoints)
        return [TristoreSession(self.endpoints[w % n], self.plain) for w in range(conc)]


class TristoreS3:
    """The S3 HTTP door of a :class:`Tristore` cluster (node/s3/): the same
    processes, objects and bucket; workers spread over the nodes' endpoints as
    the gRPC ones are, on one pool of keep-alive connections a phase."""

    hot_mode = "linearizable (S3 GET)"

    def __init__(self, tri: Tristore) -> None:
        self._tri = tri
        self.name = tri.name
        self.target = tri.s3

    def pids(self) -> dict[int, str]:
        return self._tri.pids()

    async def ready(self) -> None:
        async def check() -> None:
            (s,) = self.sessions(1)
            try:
                await s.warm()
            finally:
                await s.close()

        await _until_ready(f"{self.name} S3", check, [])

    def sessions(self, conc: int) -> list[Session]:
        pool = s3client.Pool(self.target, conc)
        eps = self.target.endpoints
        return [S3Session(pool.session(eps[w % len(eps)])) for w in range(conc)]


class S3Session:
    """The Session face over one S3 worker (bucket :data:`BUCKET`)."""

    def __init__(self, s3: s3client.S3Session) -> None:
        self._s3 = s3

    async def warm(self) -> None:
        await self._s3.bucket_location(BUCKET)

    async def put(self, key: str, value: bytes) -> None:
        await self._s3.put(BUCKET, key, value)

    async def get(self, key: str, size: int) -> None:
        await self._s3.get(BUCKET, key, size)

    get_hot = get

    async def close(self) -> None:
        await self._s3.close()


def _tristore_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env=env,
    )


@contextlib.contextmanager
def tristore_cluster(
    workdir: Path, processes: int = 11, plain: bool = False, nodes_per_az: int = 2
) -> Iterator[Tristore]:
    """The launcher's default dev cluster (six nodes in three AZs, witnesses,
    replicators) on a free block of ports; ``dev down`` on the way out.
    ``plain``: ``dev up --insecure`` (plaintext, ``[tls] insecure = true``)
    with signatures off (``TRISTORE_AUTH_ENABLED=false``: every call is taken
    as root's, signed or not), to measure what TLS and signing cost.
    ``nodes_per_az``: ``dev up --nodes-per-az`` (1: one node an AZ, three in all)."""
    base = free_base_port(processes)
    env = None
    try:
        if plain:
            env = dict(os.environ, TRISTORE_AUTH_ENABLED="false")
            flags = ["--insecure"]
        else:
            flags = tlsenv.setup()
        up = _tristore_cli(
            "dev", "up", "--dir", str(workdir), "--base-port", str(base),
            "--nodes-per-az", str(nodes_per_az), *flags, env=env,
        )  # fmt: skip
        if up.returncode != 0:
            raise RuntimeError(f"tristore dev up failed:\n{up.stdout}{up.stderr}")
        st = _tristore_cli("dev", "status", "--dir", str(workdir), "--json", env=env)
        status = json.loads(st.stdout)
        down = [p["name"] for p in status if not p["up"] or not p["pid"]]
        if down:
            raise RuntimeError(f"tristore processes not up: {down}")
        yield Tristore(status, load_config(workdir / "cluster.toml", env), plain)
    finally:
        _tristore_cli("dev", "down", "--dir", str(workdir), env=env)
