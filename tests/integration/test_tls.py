"""TLS on every listener, internal services for the cluster only, and abuse
limits, against a real ``dev up`` cluster (real certificates, real handshakes).

The callers here are what an attacker on the network has: no TLS, TLS without
trusting the CA, TLS with no client certificate, a user's certificate from the
cluster's own CA, and a node certificate of another cluster. The positive
controls (a node certificate of this cluster) show that what is refused is
refused for who called, not for what was sent.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from google.protobuf import message_factory

from tests.integration.cluster import (
    TEST_CA_DIR,
    DevCluster,
    all_versions,
    signed_channel,
    start_cluster,
    user_channel,
    wait_until,
)
from tristore import Client, errors, framed, tls
from tristore.pb import admin_pb2, events_pb2, objects_pb2, replica_pb2, witness_pb2
from tristore.stamps import Stamp

# Renews a node's certificate, SIGHUPs it, forges internal RPCs: a cluster of its own.
pytestmark = [pytest.mark.integration, pytest.mark.private_cluster]

BUCKET = "tls"
#: A second CA, trusted by nothing in the cluster.
ROGUE = "rogue"


# --- callers -------------------------------------------------------------------


def _ca_pem() -> bytes:
    return Path(os.environ[tls.CA_BUNDLE_ENV]).read_bytes()


def _cert(
    tmp: Path, label: str, identity: tls.Identity | None, ca_dir: Path = TEST_CA_DIR
) -> tls.Files:
    """A certificate from ``ca_dir`` (the cluster's CA unless told), naming
    ``identity`` (None: a user's certificate, no cluster identity)."""
    files = tls.Files(ca_dir / "ca.crt", tmp / f"{label}.crt", tmp / f"{label}.key")
    assert files.cert is not None and files.key is not None
    tls.issue(ca_dir, files.cert, files.key, ["127.0.0.1"], identity)
    return files


def _mtls_channel(address: str, files: tls.Files) -> grpc.Channel:
    assert files.cert is not None and files.key is not None
    creds = grpc.ssl_channel_credentials(
        root_certificates=_ca_pem(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )
    return grpc.secure_channel(address, creds)


def _internal(cluster: DevCluster, address: str) -> str:
    return cluster.config.internal_address(address)


# --- every internal RPC ---------------------------------------------------------


def _methods(module: Any, service: str) -> Iterator[tuple[str, Any]]:
    svc = module.DESCRIPTOR.services_by_name[service]
    for m in svc.methods:
        yield f"/{svc.full_name}/{m.name}", m


def _hostile(path: str, cls: type) -> Any:
    """A request that would do harm if it were taken: a forged map, a stamp far
    ahead, a change log dump; an empty one for the rest."""
    far = Stamp(int(time.time() * 1000) + 3_600_000, 0, 1, 1)
    if path.endswith("WitnessService/Record"):
        return cls(keys=[f"{BUCKET}\x00forged".encode()], stamps=far.encode(), incarnations=[1])
    if path.endswith("AdminService/PutClusterMap"):
        return cls(map=admin_pb2.ClusterMap(epoch=999))
    if path.endswith("AdminService/GetClusterMap"):
        return cls(from_node="a1", handoffs_pending=10**6)
    if path.endswith("ReplicaService/ReadLog"):
        return cls(limit=1000)
    if path.endswith("ReplicaService/Stage"):
        return cls(data_id=b"\x01" * 16, index=0, data=b"attacker bytes")
    if path.endswith("ReplicaService/ReadSealedBody"):
        return cls(bucket=BUCKET, key="k0", version_id="null")
    return cls()


def internal_rpcs(cluster: DevCluster) -> list[tuple[str, str, Any, Any]]:
    """(full method, public address of a process serving it, request, method
    descriptor) for every RPC only the cluster may call."""
    cfg = cluster.config
    node, witness = cfg.nodes[0].grpc, cfg.witnesses[0].grpc
    out = []
    table: list[tuple[Any, str, str, Callable[[str], bool]]] = [
        (replica_pb2, "ReplicaService", node, lambda _m: True),
        (witness_pb2, "WitnessService", witness, lambda _m: True),
        (admin_pb2, "AdminService", node, lambda m: m.endswith(("PutClusterMap", "GetClusterMap"))),
        (events_pb2, "EventService", node, lambda m: m.endswith("ReadNodeEvents")),
    ]
    if cfg.replicators:
        table.append((admin_pb2, "ReplicatorAdmin", cfg.replicators[0].grpc, lambda _m: True))
    for module, service, address, wanted in table:
        for path, m in _methods(module, service):
            if wanted(path):
                cls = message_factory.GetMessageClass(m.input_type)
                out.append((path, address, _hostile(path, cls), m))
    return out


def _call(channel: grpc.Channel, path: str, request: Any, m: Any) -> None:
    """Call ``path`` with ``request``; raises grpc.RpcError as the server answered."""
    ser = type(request).SerializeToString
    de = lambda b: b  # noqa: E731 - the answer is not looked at
    if m.client_streaming and m.server_streaming:
        list(channel.stream_stream(path, ser, de)(iter([request]), timeout=5))
    elif m.client_streaming:
        channel.stream_unary(path, ser, de)(iter([request]), timeout=5)
    elif m.server_streaming:
        list(channel.unary_stream(path, ser, de)(request, timeout=5))
    else:
        channel.unary_unary(path, ser, de)(request, timeout=5)


def _refused(channel: grpc.Channel, path: str, request: Any, m: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        _call(channel, path, request, m)
    return info.value


def _snapshot(cluster: DevCluster) -> dict[str, Any]:
    """What an internal RPC could change: objects (as served and on disk), the
    cluster map, the witnesses' tables."""
    with cluster.client() as c:
        status = c.cluster_status()
        return {
            "versions": all_versions(c, BUCKET),
            "on_disk": {n.name: cluster.node_versions(n.name) for n in cluster.config.nodes[:2]},
            "map": c.cluster_map(),
            "witness_keys": sorted((w.name, w.keys, w.incarnation) for w in status.witnesses),
        }


@pytest.fixture(scope="module")
def seeded(cluster: DevCluster) -> DevCluster:
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        for i in range(5):
            c.put_object(BUCKET, f"k{i}", f"v{i}".encode())
    return cluster


def test_a_plaintext_client_is_refused(seeded: DevCluster) -> None:
    with (
        Client(seeded.endpoint, insecure=True, timeout=3) as c,
        pytest.raises(errors.ServiceUnavailable),
    ):
        c.list_buckets()
    with grpc.insecure_channel(seeded.config.nodes[0].grpc) as channel:
        err = _refused(
            channel,
            "/tristore.v1.ObjectService/ListBuckets",
            objects_pb2.ListBucketsRequest(),
            objects_pb2.DESCRIPTOR.services_by_name["ObjectService"].methods_by_name["ListBuckets"],
        )
    assert err.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_ca_is_refused(seeded: DevCluster, tmp_path: Path) -> None:
    rogue = tls.ensure_ca(tmp_path / ROGUE)
    with (
        Client(seeded.endpoint, ca_file=rogue, timeout=3) as c,
        pytest.raises(errors.ServiceUnavailable),
    ):
        c.list_buckets()
    # Trusting the cluster's CA, the same call works.
    with Client(seeded.endpoint, ca_file=seeded.config.tls_files("a1").ca) as c:
        assert BUCKET in {b.name for b in c.list_buckets()}


def test_the_server_names_its_role_and_cluster(seeded: DevCluster) -> None:
    cfg = seeded.config
    for spec, role in ((cfg.nodes[0], "node"), (cfg.witnesses[0], "witness")):
        host, _, port = spec.grpc.rpartition(":")
        pem = ssl.get_server_certificate((host, int(port)), ca_certs=str(cfg.tls_files("a1").ca))
        sans = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
        uris = sans.value.get_values_for_type(x509.UniformResourceIdentifier)
        assert uris == [f"tristore://{cfg.cluster.name}/{role}/{spec.name}"]


def test_every_internal_rpc_refuses_outsiders_and_changes_nothing(
    seeded: DevCluster, tmp_path: Path
) -> None:
    cluster = seeded
    name = cluster.config.cluster.name
    before = _snapshot(cluster)
    rpcs = internal_rpcs(cluster)
    assert len(rpcs) >= 17, [
        p for p, *_ in rpcs
    ]  # 10 replica, 4 witness, 2 map, 1 events, 1 replicator
    user = _cert(tmp_path, "user", None)
    elsewhere = _cert(tmp_path, "elsewhere", tls.Identity("elsewhere", "node", "a1"))
    replicator = _cert(tmp_path, "replicator", tls.Identity(name, "replicator", "r9"))
    witness = _cert(tmp_path, "witness", tls.Identity(name, "witness", "w9"))
    node = _cert(tmp_path, "node", tls.Identity(name, "node", "a9"))
    rogue_ca = tmp_path / ROGUE
    tls.ensure_ca(rogue_ca)
    rogue_node = _cert(tmp_path, "rogue-node", tls.Identity(name, "node", "a1"), rogue_ca)
    denied: dict[str, list[str]] = {}
    for path, address, request, m in rpcs:
        internal = _internal(cluster, address)
        # No client certificate, on the public port: the RPC is refused by name.
        with user_channel(address) as ch:
            err = _refused(ch, path, request, m)
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (path, err)
            assert errors.from_rpc_error(err).code == "AccessDenied"
        # A user's certificate from the cluster's own CA, another cluster's
        # node, a replicator (except where replicators may call), a witness.
        callers = [("user", user), ("other cluster", elsewhere), ("witness", witness)]
        if not path.endswith(("ReplicaService/ReadLog", "ReplicaService/ReadSealedBody")):
            callers.append(("replicator", replicator))
        if path.endswith("ReplicaService/ReadSealedBody"):
            callers.append(("node", node))  # SSE-C ciphertext: for replicators only
        for label, files in callers:
            with _mtls_channel(internal, files) as ch:
                err = _refused(ch, path, request, m)
                assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (path, label, err)
                denied.setdefault(path, []).append(label)
        # No certificate, or one the cluster's CA did not sign: no handshake.
        with user_channel(internal) as ch:
            assert _refused(ch, path, request, m).code() == grpc.StatusCode.UNAVAILABLE
        with _mtls_channel(internal, rogue_node) as ch:
            assert _refused(ch, path, request, m).code() == grpc.StatusCode.UNAVAILABLE
    assert set(denied) == {p for p, *_ in rpcs}
    after = _snapshot(cluster)
    assert after == before
    # Clocks: the forged stamp an hour ahead reached no clock; a new write is stamped now.
    with cluster.client() as c:
        c.put_object(BUCKET, "after", b"x")
        modified = c.head_object(BUCKET, "after").last_modified
    ahead_s = modified.timestamp() - time.time()
    assert ahead_s < 1, ahead_s


def test_a_node_certificate_of_this_cluster_is_let_through(
    seeded: DevCluster, tmp_path: Path
) -> None:
    """The positive control: the same calls with the right certificate work."""
    cfg = seeded.config
    node = _cert(tmp_path, "node", tls.Identity(cfg.cluster.name, "node", "a9"))
    with _mtls_channel(_internal(seeded, cfg.witnesses[0].grpc), node) as ch:
        status = ch.unary_unary(
            "/tristore.v1.WitnessService/Status",
            witness_pb2.WitnessStatusRequest.SerializeToString,
            witness_pb2.WitnessStatusResponse.FromString,
        )(witness_pb2.WitnessStatusRequest(), timeout=5)
    assert status.name == cfg.witnesses[0].name
    replicator = _cert(tmp_path, "repl", tls.Identity(cfg.cluster.name, "replicator", "r9"))
    with _mtls_channel(_internal(seeded, cfg.nodes[0].grpc), replicator) as ch:
        resp = ch.unary_unary(
            "/tristore.v1.ReplicaService/ReadLog",
            replica_pb2.ReadLogRequest.SerializeToString,
            replica_pb2.ReadLogResponse.FromString,
        )(replica_pb2.ReadLogRequest(limit=1), timeout=5)
        assert resp is not None
        # Let through to the domain, which reads only SSE-C bodies sealed.
        sealed = ch.unary_stream(
            "/tristore.v1.ReplicaService/ReadSealedBody",
            replica_pb2.ReadSealedBodyRequest.SerializeToString,
            replica_pb2.ReadDataResponse.FromString,
        )(replica_pb2.ReadSealedBodyRequest(bucket=BUCKET, key="k0", version_id="null"), timeout=5)
        with pytest.raises(grpc.RpcError) as refused:
            list(sealed)
        assert errors.from_rpc_error(refused.value).code == "InvalidRequest"


# --- the pipe port (tristore/framed.py) -------------------------------------------


def _pipe_session(
    address: str, files: tls.Files | None, frames: list[bytes], answers: int
) -> list[bytes]:
    """Dial a pipe port (TLS with ``files``' certificate, or plaintext with
    None), send ``frames`` (each length-prefixed) and read up to ``answers``
    frames back, fewer if the server ends the stream."""
    host, _, port = address.rpartition(":")
    raw = socket.create_connection((host, int(port)), timeout=5)
    sock: Any = raw
    if files is not None:
        ctx = ssl.create_default_context(cafile=str(files.ca))
        assert files.cert is not None and files.key is not None
        ctx.load_cert_chain(str(files.cert), str(files.key))
        sock = ctx.wrap_socket(raw, server_hostname=host)
    with sock:
        sock.sendall(b"".join(framed.frame(f) for f in frames))
        got: list[bytes] = []
        buf = b""
        while len(got) < answers:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                n = int.from_bytes(buf[:4], "big")
                got.append(buf[4 : 4 + n])
                buf = buf[4 + n :]
        return got


def test_the_pipe_port_serves_only_this_clusters_nodes(seeded: DevCluster, tmp_path: Path) -> None:
    """Each node's and witness's pipe port: a caller whose certificate is not a
    node of this cluster is refused with why, and what it sent after its hello
    (a forged witness record, a forged commit) changes nothing; no certificate
    or one from another CA gets no handshake; a node of this cluster gets answers."""
    cfg = seeded.config
    name = cfg.cluster.name
    before = _snapshot(seeded)
    node_spec, witness_spec = cfg.nodes[0], cfg.witnesses[0]
    wkey = f"{BUCKET}\x00k0".encode()
    ahead = Stamp(int(time.time() * 1000) + 3_600_000, 0, 1, 1).encode()
    forged_record = witness_pb2.WitnessPipeRequest(
        id=1, record=witness_pb2.RecordRequest(keys=[wkey], stamps=ahead, incarnations=[0])
    ).SerializeToString()
    forged_commit = replica_pb2.PipeRequest(
        id=1,
        ops=[replica_pb2.BatchOp(read_meta=replica_pb2.ReadMetaRequest(bucket=BUCKET, key="k0"))],
    ).SerializeToString()
    pipes = [
        (cfg.pipe_address(node_spec.grpc), framed.REPLICA_PIPE, forged_commit),
        (cfg.pipe_address(witness_spec.grpc), framed.WITNESS_PIPE, forged_record),
    ]
    outsiders = {
        "user": _cert(tmp_path, "user", None),
        "other cluster": _cert(tmp_path, "elsewhere", tls.Identity("elsewhere", "node", "a1")),
        "witness": _cert(tmp_path, "witness", tls.Identity(name, "witness", "w9")),
        "replicator": _cert(tmp_path, "replicator", tls.Identity(name, "replicator", "r9")),
    }
    node = _cert(tmp_path, "node", tls.Identity(name, "node", "a9"))
    rogue_ca = tmp_path / ROGUE
    tls.ensure_ca(rogue_ca)
    rogue_node = _cert(tmp_path, "rogue-node", tls.Identity(name, "node", "a1"), rogue_ca)
    for address, method, forged in pipes:
        for label, files in outsiders.items():
            got = _pipe_session(address, files, [method.encode(), forged], 2)
            assert len(got) == 1, (address, label, got)  # the refusal, then the end
            assert b"internal to the cluster" in got[0], (label, got[0])
        # The right caller, the wrong pipe: refused by name.
        other = framed.WITNESS_PIPE if method == framed.REPLICA_PIPE else framed.REPLICA_PIPE
        got = _pipe_session(address, node, [other.encode()], 2)
        assert len(got) == 1 and b"this port serves" in got[0], got
        # No certificate, or one from a CA the cluster does not trust: no handshake.
        for files in (_cert(tmp_path, "nocert", None, rogue_ca), rogue_node):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                _pipe_session(address, files, [method.encode()], 1)
        # Plaintext: the server waits for a TLS hello and never answers a frame.
        with pytest.raises((ConnectionError, OSError)):
            got = _pipe_session(address, None, [method.encode()], 1)
            assert got == [], got
            raise ConnectionError("ended without an answer")
    # The positive control: a node of this cluster is greeted and answered.
    got = _pipe_session(pipes[0][0], node, [framed.REPLICA_PIPE.encode(), forged_commit], 2)
    assert got[0] == b""
    answer = replica_pb2.PipeResponse.FromString(got[1])
    assert answer.id == 1 and answer.results[0].read_meta.found
    check = witness_pb2.WitnessPipeRequest(id=7, check=witness_pb2.CheckRequest(keys=[wkey]))
    got = _pipe_session(
        pipes[1][0], node, [framed.WITNESS_PIPE.encode(), check.SerializeToString()], 2
    )
    checked = witness_pb2.WitnessPipeResponse.FromString(got[1])
    assert got[0] == b"" and checked.id == 7
    assert checked.check.stamps != ahead  # the outsiders' forged record was never taken
    assert _snapshot(seeded) == before


def test_a_witness_refuses_a_stamp_3s_ahead(seeded: DevCluster, tmp_path: Path) -> None:
    cfg = seeded.config
    node = _cert(tmp_path, "node", tls.Identity(cfg.cluster.name, "node", "a9"))
    key = f"{BUCKET}\x00skewed".encode()
    with _mtls_channel(_internal(seeded, cfg.witnesses[0].grpc), node) as ch:
        status = ch.unary_unary(
            "/tristore.v1.WitnessService/Status",
            witness_pb2.WitnessStatusRequest.SerializeToString,
            witness_pb2.WitnessStatusResponse.FromString,
        )(witness_pb2.WitnessStatusRequest(), timeout=5)
        record = ch.unary_unary(
            "/tristore.v1.WitnessService/Record",
            witness_pb2.RecordRequest.SerializeToString,
            witness_pb2.RecordResponse.FromString,
        )
        check = ch.unary_unary(
            "/tristore.v1.WitnessService/Check",
            witness_pb2.CheckRequest.SerializeToString,
            witness_pb2.CheckResponse.FromString,
        )

        def at(ahead_ms: int) -> witness_pb2.RecordRequest:
            stamp = Stamp(int(time.time() * 1000) + ahead_ms, 0, 1, 9)
            return witness_pb2.RecordRequest(
                keys=[key], stamps=stamp.encode(), incarnations=[status.incarnation]
            )

        with pytest.raises(grpc.RpcError) as info:
            record(at(3000), timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert errors.from_rpc_error(info.value).code == "InvalidArgument"
        assert "ahead" in (info.value.details() or "")
        assert check(witness_pb2.CheckRequest(keys=[key]), timeout=5).stamps == bytes(16)
        # Within the bound it is taken (the refusal was the stamp's, not the caller's).
        assert not record(at(0), timeout=5).refused
        assert check(witness_pb2.CheckRequest(keys=[key]), timeout=5).stamps != bytes(16)
        # A stamp of the wrong length is InvalidArgument too.
        with pytest.raises(grpc.RpcError) as info:
            record(
                witness_pb2.RecordRequest(keys=[key], stamps=b"\x01" * 5, incarnations=[1]),
                timeout=5,
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _raw(channel: grpc.Channel, path: str) -> Callable[..., Any]:
    return channel.unary_unary(path, lambda b: b, lambda b: b)


def test_malformed_and_oversized_messages_get_s3_errors(seeded: DevCluster) -> None:
    address = seeded.config.nodes[0].grpc
    with user_channel(address) as ch:
        # Field 1 (bucket, a string) holding bytes that are not UTF-8.
        with pytest.raises(grpc.RpcError) as info:
            _raw(ch, "/tristore.v1.ObjectService/CreateBucket")(b"\x0a\x02\xff\xfe", timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert errors.from_rpc_error(info.value).code == "InvalidArgument"
        # Bytes that are no protobuf message at all.
        with pytest.raises(grpc.RpcError) as info:
            _raw(ch, "/tristore.v1.ObjectService/HeadBucket")(b"\xff" * 7, timeout=5)
        assert errors.from_rpc_error(info.value).code == "InvalidArgument"
        # Over the 16 MiB a message may have: unary, and inside a PUT's stream.
        big = objects_pb2.CreateBucketRequest(bucket="b" * (17 * 1024 * 1024))
        with pytest.raises(grpc.RpcError) as info:
            _raw(ch, "/tristore.v1.ObjectService/CreateBucket")(big.SerializeToString(), timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert errors.from_rpc_error(info.value).code == "EntityTooLarge"
        header = objects_pb2.PutObjectRequest(
            header=objects_pb2.PutObjectHeader(bucket=BUCKET, key="huge", size=17 * 1024 * 1024)
        )
        body = objects_pb2.PutObjectRequest(data=b"\0" * (17 * 1024 * 1024))
        with signed_channel(address) as signed:
            put = signed.stream_unary(
                "/tristore.v1.ObjectService/PutObject",
                objects_pb2.PutObjectRequest.SerializeToString,
                objects_pb2.PutObjectResponse.FromString,
            )
            with pytest.raises(grpc.RpcError) as info:
                put(iter([header, body]), timeout=30)
        assert errors.from_rpc_error(info.value).code == "EntityTooLarge"
        # A version id of the wrong length.
        with pytest.raises(grpc.RpcError) as info, signed_channel(address) as signed:
            signed.unary_unary(
                "/tristore.v1.ObjectService/HeadObject",
                objects_pb2.HeadObjectRequest.SerializeToString,
                objects_pb2.HeadObjectResponse.FromString,
            )(objects_pb2.HeadObjectRequest(bucket=BUCKET, key="k0", version_id="abcd"), timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with seeded.client() as c:
        assert "huge" not in {o.key for o in c.list_objects(BUCKET).contents}


def _served_serial(address: str, ca: Path) -> int:
    host, _, port = address.rpartition(":")
    pem = ssl.get_server_certificate((host, int(port)), ca_certs=str(ca))
    return tls.serial_of(pem.encode())


def test_a_certificate_renewed_on_disk_is_served_without_a_restart(seeded: DevCluster) -> None:
    cluster = seeded
    cfg = cluster.config
    files = cfg.tls_files("a1")
    assert files.cert is not None and files.key is not None
    address = cfg.nodes[0].grpc
    pid = next(p["pid"] for p in cluster.status() if p["name"] == "a1")
    old = _served_serial(address, files.ca)
    assert old == tls.serial_of(files.cert.read_bytes())
    new = tls.issue(
        files.ca.parent,
        files.cert,
        files.key,
        ["127.0.0.1", "localhost"],
        tls.Identity(cfg.cluster.name, "node", "a1"),
    )
    assert new != old
    wait_until(lambda: _served_serial(address, files.ca) == new, 10, what="the new certificate")
    # The internal port and the pipe port serve it too, and the cluster works on through a1.
    assert _served_serial(_internal(cluster, address), files.ca) == new
    assert _served_serial(cfg.pipe_address(address), files.ca) == new
    with Client(address) as c:
        c.put_object(BUCKET, "renewed", b"after renewal")
        assert c.get_object(BUCKET, "renewed") == b"after renewal"
    # SIGHUP reloads (here: the same files) and does not stop the process.
    cluster.kill("a1", "HUP")
    assert _served_serial(address, files.ca) == new
    assert next(p["pid"] for p in cluster.status() if p["name"] == "a1") == pid
    assert "a1" in cluster.up_names()


def test_insecure_true_serves_plaintext_and_says_so(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path, "--insecure", "--replicators", "0")
    try:
        assert cluster.config.tls.insecure
        with Client(cluster.endpoint, insecure=True) as c:
            c.create_bucket("plain")
            c.put_object("plain", "k", b"v")
            assert c.get_object("plain", "k") == b"v"
            assert c.cluster_status().witnesses[0].up
        out = cluster.cli("ls", "s3://plain", extra_env={tls.INSECURE_ENV: "1"}).stdout
        assert b"k" in out
        # A client that insists on TLS does not silently fall back to plaintext.
        with Client(cluster.endpoint, timeout=3) as c, pytest.raises(errors.ServiceUnavailable):
            c.list_buckets()
        log = (cluster.dir / "logs" / "a1.log").read_text()
        assert "WARNING" in log and "INSECURE" in log and "PLAINTEXT" in log
        assert not (cluster.dir / "tls").exists()
    finally:
        cluster.down()


def test_dev_up_prints_what_a_client_needs(seeded: DevCluster) -> None:
    out = seeded.dev("up").stdout.decode()
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    assert exports["TRISTORE_ENDPOINT"] == seeded.endpoint
    assert Path(exports["TRISTORE_CA_BUNDLE"]) == seeded.config.tls_files("a1").ca
    env = {tls.CA_BUNDLE_ENV: exports["TRISTORE_CA_BUNDLE"]}
    assert BUCKET.encode() in seeded.cli("ls", extra_env=env).stdout
    # The flag works as the variable does.
    proc = seeded.cli(
        "ls", "--ca-bundle", exports["TRISTORE_CA_BUNDLE"], extra_env={tls.CA_BUNDLE_ENV: ""}
    )
    assert BUCKET.encode() in proc.stdout
    key = seeded.config.tls_files("a1").key
    assert key is not None and key.stat().st_mode & 0o777 == 0o600


def test_internal_rpcs_check_their_input(seeded: DevCluster, tmp_path: Path) -> None:
    """From a node of the cluster, bad input is refused as at the public edge."""
    cfg = seeded.config
    node = _cert(tmp_path, "node", tls.Identity(cfg.cluster.name, "node", "a9"))
    with _mtls_channel(_internal(seeded, cfg.nodes[0].grpc), node) as ch:
        stage = ch.stream_unary(
            "/tristore.v1.ReplicaService/Stage",
            replica_pb2.StageRequest.SerializeToString,
            replica_pb2.StageResponse.FromString,
        )
        read = ch.unary_stream(
            "/tristore.v1.ReplicaService/ReadData",
            replica_pb2.ReadDataRequest.SerializeToString,
            replica_pb2.ReadDataResponse.FromString,
        )
        commit = ch.unary_unary(
            "/tristore.v1.ReplicaService/Commit",
            replica_pb2.CommitRequest.SerializeToString,
            replica_pb2.CommitResponse.FromString,
        )
        calls: list[Callable[[], Any]] = [
            lambda: stage(
                iter([replica_pb2.StageRequest(data_id=b"\x01" * 5, data=b"x")]), timeout=5
            ),
            lambda: list(
                read(replica_pb2.ReadDataRequest(data_id=b"\x01", chunk_size=4), timeout=5)
            ),
            lambda: commit(replica_pb2.CommitRequest(bucket="NOT A BUCKET", key="k"), timeout=5),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value
            assert errors.from_rpc_error(info.value).code in (
                "InvalidArgument",
                "InvalidBucketName",
            )
