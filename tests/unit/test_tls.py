"""The pieces of transport security that need no process: certificates, the
identity they carry, who may call what, the config's paths, the clock bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509

from tristore import config, errors, server, tls
from tristore.stamps import HybridClock, Stamp

pytestmark = pytest.mark.unit


def test_issued_certificates_name_role_cluster_and_hosts(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path / "ca")
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert tls.ensure_ca(tmp_path / "ca") == ca  # kept, not made again
    ident = tls.Identity("east", "node", "a1")
    serial = tls.issue(
        tmp_path / "ca", tmp_path / "a1.crt", tmp_path / "a1.key", ["127.0.0.1", "east-a1"], ident
    )
    assert (tmp_path / "a1.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "a1.crt").read_bytes())
    assert cert.serial_number == serial
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [ident.uri]
    assert sans.get_values_for_type(x509.DNSName) == ["east-a1"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("uri", "ident"),
    [
        ("tristore://east/node/a1", tls.Identity("east", "node", "a1")),
        ("tristore://east/replicator/r1", tls.Identity("east", "replicator", "r1")),
        ("tristore://east/admin/a1", None),  # not a role
        ("tristore://east/node", None),
        ("tristore://east/node/a1/x", None),
        ("https://east/node/a1", None),
        ("tristore:///node/a1", None),
    ],
)
def test_identity_from_uri(uri: str, ident: tls.Identity | None) -> None:
    assert tls.Identity.from_uri(uri) == ident


def _auth(*uris: str) -> dict[str, list[bytes]]:
    return {"x509_pem_cert": [b"pem"], "peer_uri": [u.encode() for u in uris]}


def test_check_peer() -> None:
    node = frozenset({"node"})
    ident = tls.identity_of(_auth("tristore://east/node/a1"))
    assert tls.check_peer(ident, node, "east", "Commit").name == "a1"
    for auth in (
        {},  # no certificate
        _auth(),  # a certificate that names no cluster identity (a user's)
        _auth("tristore://west/node/a1"),  # another cluster
        _auth("tristore://east/replicator/r1"),  # another role
    ):
        with pytest.raises(errors.AccessDenied, match="internal to the cluster"):
            tls.check_peer(tls.identity_of(auth), node, "east", "Commit")


def test_internal_methods() -> None:
    assert server.internal_roles("/tristore.v1.ReplicaService/Commit") == {"node"}
    assert server.internal_roles("/tristore.v1.ReplicaService/ReadLog") == {"node", "replicator"}
    assert server.internal_roles("/tristore.v1.WitnessService/Check") == {"node"}
    assert server.internal_roles("/tristore.v1.AdminService/PutClusterMap") == {"node"}
    assert server.internal_roles("/tristore.v1.AdminService/ClusterStatus") is None
    assert server.internal_roles("/tristore.v1.ObjectService/PutObject") is None


def test_tls_paths_are_relative_to_the_config_file(
    tmp_path: Path, raw_config: dict[str, object]
) -> None:
    path = tmp_path / "cluster.toml"
    cfg = config.parse(raw_config, env={}, path=str(path))
    files = cfg.tls_files("a1")
    assert files == tls.Files(
        tmp_path / "tls/ca.crt", tmp_path / "tls/a1.crt", tmp_path / "tls/a1.key"
    )
    assert cfg.internal_address("127.0.0.1:7101") == "127.0.0.1:8101"
    raw_config["tls"] = {"cert_file": "/etc/pki/{name}.pem", "internal_port_offset": 500}
    cfg = config.parse(raw_config, env={"TRISTORE_TLS_INSECURE": "1"}, path=str(path))
    assert cfg.tls.insecure and cfg.tls_files("b2").cert == Path("/etc/pki/b2.pem")
    assert cfg.internal_address("h:7101") == "h:7601"


def test_an_internal_port_on_another_process_port_is_refused(raw_config: dict[str, object]) -> None:
    raw_config["tls"] = {"internal_port_offset": 1}  # a1's internal port is a2's gRPC port
    with pytest.raises(errors.InvalidArgument, match="internal port"):
        config.parse(raw_config, env={})


def test_the_pipe_port_is_its_own(raw_config: dict[str, object]) -> None:
    cfg = config.parse(raw_config, env={})
    assert cfg.pipe_address("127.0.0.1:7101") == "127.0.0.1:8201"
    raw_config["tls"] = {"pipe_port_offset": 1}  # a1's pipe port is a2's gRPC port
    with pytest.raises(errors.InvalidArgument, match=r"pipe port of .*pipe_port_offset"):
        config.parse(raw_config, env={})
    raw_config["tls"] = {"pipe_port_offset": 1000}
    with pytest.raises(errors.InvalidArgument, match="must differ from internal_port_offset"):
        config.parse(raw_config, env={})


def test_the_clock_refuses_to_jump_further_than_the_bound() -> None:
    clock = HybridClock(1, 1, max_skew_ms=1000)
    now = int(time.time() * 1000)
    clock.observe(Stamp(now + 500, 7, 1, 2))  # within the bound: taken
    assert clock.now() > Stamp(now + 500, 7, 1, 2)
    with pytest.raises(errors.InvalidArgument, match="ahead"):
        clock.observe(Stamp(now + 3000, 0, 1, 2))
    assert clock.now().physical_ms < now + 1000
    # Unbounded (the default) it jumps, as a hybrid clock does.
    free = HybridClock(1, 1)
    free.observe(Stamp(now + 3000, 0, 1, 2))
    assert free.now().physical_ms >= now + 3000
