"""Transport security: the cluster CA, process certificates, and the gRPC
credentials every listener and channel is built from.

A cluster has one CA. Each process holds a certificate from it that names the
process's role and cluster in a SAN URI, ``tristore://<cluster>/<role>/<name>``,
besides the host names and addresses it is reached at. Every process serves
two listeners from one gRPC server (:mod:`tristore.server`):

* the public one (``grpc`` in the map): server-authenticated TLS; users' SDKs
  and CLIs verify the server against the CA and present no certificate;
* the internal one (``grpc`` port + ``[tls] internal_port_offset``): mutual
  TLS, a client certificate from the cluster CA required. Cluster processes
  dial each other here.

gRPC's Python server either requires a client certificate on a port or never
asks for one, so the two kinds of caller need two ports; the interceptor then
lets an internal RPC through only when the caller's certificate names the
right role and this cluster (:func:`check_peer`; the pipe port, a third, does
the same on its own TLS stream: tristore/framed.py).

Certificates renew without a restart: the server asks :class:`Reloader` for
its certificate at every TLS handshake, and it re-reads the files when they
changed on disk (or after SIGHUP). Client channels read the files when they are
created.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore.errors import AccessDenied, InvalidArgument

# grpc and cryptography are imported by the functions that use them: the CLI
# reads this module's constants and config.py its Files, and the two libraries
# cost ~110 ms a process that never issues a certificate or opens a channel.
if TYPE_CHECKING:
    import grpc
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

ROLES = ("node", "witness", "replicator")
URI_SCHEME = "tristore"
CA_DAYS = 3650
LEAF_DAYS = 365
#: A PEM file of the CA(s) the SDK and CLI trust (``dev up`` prints the line to export).
CA_BUNDLE_ENV = "TRISTORE_CA_BUNDLE"
#: ``1``: the SDK and CLI talk plaintext (a cluster run with ``[tls] insecure = true``).
INSECURE_ENV = "TRISTORE_INSECURE"


@dataclass(frozen=True)
class Identity:
    """Who a cluster certificate says its holder is."""

    cluster: str
    role: str
    name: str

    @property
    def uri(self) -> str:
        return f"{URI_SCHEME}://{self.cluster}/{self.role}/{self.name}"

    @classmethod
    def from_uri(cls, uri: str) -> Identity | None:
        head = f"{URI_SCHEME}://"
        if not uri.startswith(head):
            return None
        parts = uri[len(head) :].split("/")
        if len(parts) != 3 or not all(parts) or parts[1] not in ROLES:
            return None
        return cls(*parts)


@dataclass(frozen=True)
class Files:
    """The PEM files of one process (or of a client: ``cert``/``key`` empty)."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None


# --- issuing -------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (a certificate: anyone may read it), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_ca(directory: Path, name: str = "tristore") -> Path:
    """``directory/ca.crt`` and ``ca.key`` (0600), created if missing; returns
    the certificate's path."""
    crt, key_path = directory / "ca.crt", directory / "ca.key"
    if crt.exists() and key_path.exists():
        return crt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} cluster CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    _write_private(key_path, _key_pem(key))
    write_public(crt, cert.public_bytes(serialization.Encoding.PEM))
    return crt


def _san_entries(hosts: Iterable[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    out: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def issue(
    ca_dir: Path,
    cert_path: Path,
    key_path: Path,
    hosts: Iterable[str],
    identity: Identity | None = None,
    days: int = LEAF_DAYS,
) -> int:
    """Issue a certificate from the CA in ``ca_dir`` for ``hosts`` (DNS names or
    IP addresses), naming ``identity`` in a SAN URI when given (a cluster
    process; without it, a plain server or client certificate). Writes the key
    0600. Returns the serial number."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument(f"{ca_dir / 'ca.key'} is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    sans = _san_entries(hosts)
    if identity is not None:
        sans.append(x509.UniformResourceIdentifier(identity.uri))
    cn = identity.name if identity is not None else next(iter(hosts), "tristore")
    now = _now()
    serial = x509.random_serial_number()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Key first: a reader that sees the new certificate must find its key.
    _write_private(key_path, _key_pem(key))
    write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return serial


# --- reading -------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidArgument(f"{what} {path} does not exist") from None
    except OSError as e:
        raise InvalidArgument(f"{what} {path} cannot be read: {e.strerror}") from None
    if b"-----BEGIN" not in data:
        raise InvalidArgument(f"{what} {path} is not a PEM file")
    return data


def serial_of(cert_pem: bytes) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(cert_pem).serial_number


def _stat(paths: Iterable[Path]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            out.append((0, 0, 0))
        else:
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


class Reloader:
    """The server certificate of one process, re-read when its files change.

    gRPC calls :meth:`fetch` (from one of its own threads) at each TLS
    handshake; a few ``stat`` calls decide whether the files changed. A file
    caught half-written is skipped until the next handshake.
    """

    def __init__(self, files: Files) -> None:
        assert files.cert is not None and files.key is not None
        self.files = files
        self._paths = (files.ca, files.cert, files.key)
        self._lock = threading.Lock()
        self._force = False
        self._seen = _stat(self._paths)
        self.serial = 0
        #: The newest certificate configuration, and how many times it was loaded.
        self.config = self._load()
        self.generation = 1

    def _load(self) -> Any:
        ca = _read(self.files.ca, "[tls] ca_file")
        cert = _read(self.files.cert, "[tls] cert_file")  # type: ignore[arg-type]
        key = _read(self.files.key, "[tls] key_file")  # type: ignore[arg-type]
        self.serial = serial_of(cert)
        import grpc

        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def request_reload(self) -> None:
        """Re-read the files at the next handshake even if they look unchanged (SIGHUP)."""
        self._force = True

    def refresh(self) -> None:
        """Load the files again if they changed since they were last loaded."""
        seen = _stat(self._paths)
        with self._lock:
            if seen == self._seen and not self._force:
                return
            old = self.serial
            try:
                config = self._load()
            except Exception as exc:  # noqa: BLE001 - keep serving the old certificate
                log.warning("certificate files changed but cannot be loaded yet: %s", exc)
                return
            self._seen, self._force = seen, False
            self.config = config
            self.generation += 1
        log.info("reloaded the TLS certificate (serial %x, was %x)", self.serial, old)

    def server_credentials(self, require_client_cert: bool) -> grpc.ServerCredentials:
        """Credentials of one port; each port learns of a new certificate on
        its own next handshake."""
        import grpc

        served = self.generation

        def fetch() -> Any:
            nonlocal served
            self.refresh()
            if served == self.generation:
                return None
            served = self.generation
            return self.config

        return grpc.dynamic_ssl_server_credentials(
            self.config, fetch, require_client_authentication=require_client_cert
        )


def channel_credentials(files: Files) -> grpc.ChannelCredentials:
    """Credentials of a client channel that verifies the server against the CA
    and, with a certificate in ``files``, presents it (mutual TLS)."""
    import grpc

    ca = _read(files.ca, "CA bundle")
    if files.cert is None or files.key is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=_read(files.key, "[tls] key_file"),
        certificate_chain=_read(files.cert, "[tls] cert_file"),
    )


# --- checking callers ----------------------------------------------------------


def identity_of(auth: Mapping[str, Iterable[bytes]]) -> Identity | None:
    """The cluster identity in a verified peer certificate (gRPC's auth
    context), or None when the caller presented none or not a cluster one."""
    if not auth.get("x509_pem_cert"):
        return None
    for raw in auth.get("peer_uri", ()) or auth.get("x509_subject_alternative_name", ()):
        ident = Identity.from_uri(raw.decode("utf-8", "replace"))
        if ident is not None:
            return ident
    return None


def peer_identity(peercert: Any) -> Identity | None:
    """The cluster identity in a verified peer certificate (Python's
    ``getpeercert()``: the pipe port, tristore/framed.py)."""
    if not peercert:
        return None
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "URI":
            ident = Identity.from_uri(value)
            if ident is not None:
                return ident
    return None


def check_peer(
    ident: Identity | None, roles: frozenset[str], cluster: str, method: str
) -> Identity:
    """``ident`` (the caller's, from :func:`identity_of` or
    :func:`peer_identity`) if it is a process of ``cluster`` in one of
    ``roles``; else AccessDenied naming what was missing."""
    wanted = " or ".join(sorted(roles))
    if ident is None:
        raise AccessDenied(
            f"{method} is internal to the cluster: only a {wanted} of cluster {cluster!r} "
            "may call it, with its cluster certificate, on the internal or pipe port"
        )
    if ident.cluster != cluster or ident.role not in roles:
        raise AccessDenied(
            f"{method} is internal to the cluster: the caller's certificate names "
            f"{ident.uri}, not a {wanted} of cluster {cluster!r}"
        )
    return ident


#: The door port's default offset from a node's gRPC port (``[tls]
#: door_port_offset``, tristore/door.py): clients look for it there.
DOOR_PORT_OFFSET = 600


def internal_address(public: str, offset: int) -> str:
    """The internal listener of a process whose public listener is ``public``."""
    host, sep, port = public.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgument(f"address {public!r} is not of the form HOST:PORT")
    p = int(port) + offset
    if not 0 < p < 65536:
        raise InvalidArgument(
            f"{public}: port + [tls] internal_port_offset ({offset}) is not a valid port"
        )
    return f"{host}:{p}"


def host_of(address: str) -> str:
    host = address.rpartition(":")[0]
    return host.strip("[]") or "127.0.0.1"
