"""The benchmarks' clusters speak TLS, as ``dev up`` makes them, and the
benchmarks' clients trust them the way a user does: every cluster a run starts
is issued from one CA (``TRISTORE_DEV_CA_DIR``) that ``TRISTORE_CA_BUNDLE``
names. ``TRISTORE_BENCH_INSECURE=1`` runs the clusters plaintext instead
(``dev up --insecure``, clients with ``TRISTORE_INSECURE=1``): the pair of runs
gives what TLS costs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import grpc

from tristore import tls
from tristore.channel import CHANNEL_OPTIONS

INSECURE_ENV = "TRISTORE_BENCH_INSECURE"
_ca: Path | None = None


def insecure() -> bool:
    return os.environ.get(INSECURE_ENV, "") == "1"


def setup() -> list[str]:
    """Set the environment up (once); returns the flags ``dev up`` needs."""
    global _ca
    if insecure():
        os.environ[tls.INSECURE_ENV] = "1"
        return ["--insecure"]
    if _ca is None:
        _ca = Path(tempfile.mkdtemp(prefix="tristore-bench-ca-"))
        atexit.register(shutil.rmtree, _ca, True)
        os.environ[tls.CA_BUNDLE_ENV] = str(tls.ensure_ca(_ca, "tristore-bench"))
        os.environ["TRISTORE_DEV_CA_DIR"] = str(_ca)
        os.environ.pop(tls.INSECURE_ENV, None)
    return []


def node_channel(internal_address: str, cluster: str = "local") -> grpc.aio.Channel:
    """A channel to a process's internal port as a node of ``cluster`` (the
    witness benchmark calls the WitnessService as nodes do)."""
    if insecure() or _ca is None:
        return grpc.aio.insecure_channel(internal_address, options=CHANNEL_OPTIONS)
    files = tls.Files(_ca / "ca.crt", _ca / "bench-node.crt", _ca / "bench-node.key")
    assert files.cert is not None and files.key is not None
    if not files.cert.exists():
        ident = tls.Identity(cluster, "node", "bench")
        tls.issue(_ca, files.cert, files.key, ["127.0.0.1"], ident)
    creds = tls.channel_credentials(files)
    return grpc.aio.secure_channel(internal_address, creds, options=CHANNEL_OPTIONS)
