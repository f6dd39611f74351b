"""Access keys: where a client's come from, the stubs that sign every call of
the public services with them, and secrets sealed at rest for the server side.

Credentials are looked up as the aws CLI does: given explicitly; else
``TRISTORE_ACCESS_KEY_ID`` and ``TRISTORE_SECRET_ACCESS_KEY``; else the profile
``TRISTORE_PROFILE`` (default ``default``) of the credentials file
(``TRISTORE_SHARED_CREDENTIALS_FILE``, default ``~/.tristore/credentials``)::

    [default]
    access_key_id = TSK...
    secret_access_key = ...
    region = us-east-1          # optional

Without any, calls go unsigned (anonymous): only what a bucket makes public
(a ``public-read`` object, a policy naming ``"*"``) answers them.
"""

from __future__ import annotations

import base64
import configparser
import datetime as dt
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore import sigv4
from tristore.errors import InvalidArgument

if TYPE_CHECKING:
    # The cluster's files are a server's and the launcher's business: an SDK
    # call that only signs requests loads neither (~50 ms of dataclasses).
    from tristore.config import ClusterConfig, RemoteSpec
    from tristore.kms import LocalKeyFile

ACCESS_KEY_ENV = "TRISTORE_ACCESS_KEY_ID"
SECRET_KEY_ENV = "TRISTORE_SECRET_ACCESS_KEY"
REGION_ENV = "TRISTORE_REGION"
PROFILE_ENV = "TRISTORE_PROFILE"
FILE_ENV = "TRISTORE_SHARED_CREDENTIALS_FILE"
DEFAULT_FILE = "~/.tristore/credentials"

#: The services whose calls are signed (the public ones; internal services
#: are for cluster peers and answer mutual-TLS certificates instead).
SIGNED_SERVICES: tuple[str, ...] = (
    "/tristore.v1.ObjectService/",
    "/tristore.v1.AdminService/",
    "/tristore.v1.EventService/",
)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = sigv4.DEFAULT_REGION


def from_env(env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials of the environment or the profile file; None when there
    are none. A profile asked for by name that does not exist is an error."""
    env = os.environ if env is None else env
    region = env.get(REGION_ENV) or sigv4.DEFAULT_REGION
    akid, secret = env.get(ACCESS_KEY_ENV, ""), env.get(SECRET_KEY_ENV, "")
    if akid or secret:
        if not (akid and secret):
            raise InvalidArgument(
                f"set both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} (only one of them is set)"
            )
        return Credentials(akid, secret, region)
    path = Path(env.get(FILE_ENV) or os.path.expanduser(DEFAULT_FILE))
    profile = env.get(PROFILE_ENV, "")
    return from_profile(path, profile or "default", required=bool(profile), region=region)


def from_profile(
    path: Path, profile: str = "default", required: bool = True, region: str = ""
) -> Credentials | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text())
    except FileNotFoundError:
        if required:
            raise InvalidArgument(f"profile {profile!r}: no credentials file {path}") from None
        return None
    except (configparser.Error, OSError) as e:
        raise InvalidArgument(f"credentials file {path} cannot be read: {e}") from None
    if not parser.has_section(profile):
        if required:
            raise InvalidArgument(
                f"no profile [{profile}] in {path} (profiles: {', '.join(parser.sections())})"
            )
        return None
    sec = parser[profile]
    akid, secret = sec.get("access_key_id", ""), sec.get("secret_access_key", "")
    if not akid or not secret:
        raise InvalidArgument(
            f"profile [{profile}] in {path} needs access_key_id and secret_access_key"
        )
    return Credentials(akid, secret, sec.get("region", "") or region or sigv4.DEFAULT_REGION)


class Signer:
    """Signs calls with one access key; the derived key is cached per day."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self._day = ""
        self._key = b""

    def _key_of(self, now: dt.datetime) -> bytes:
        day = f"{now.year:04d}{now.month:02d}{now.day:02d}"
        if day != self._day:
            self._key = sigv4.signing_key(self.creds.secret_access_key, day, self.creds.region)
            self._day = day
        return self._key

    def metadata(
        self, method: str, message: Any, now: dt.datetime | None = None
    ) -> list[tuple[str, str]]:
        now = now or dt.datetime.now(dt.UTC)
        return sigv4.sign_metadata(
            self.creds.access_key_id,
            self._key_of(now),
            self.creds.region,
            method,
            message,
            now,
        )

    def presign(
        self,
        method: str,
        path: str,
        host: str,
        expires_s: int,
        query: list[tuple[str, str]],
        now: dt.datetime | None = None,
    ) -> list[tuple[str, str]]:
        """The query string of an S3 HTTP presigned URL (SigV4, host signed)."""
        now = now or dt.datetime.now(dt.UTC)
        return sigv4.presign_query(
            self.creds.access_key_id,
            self._key_of(now),
            self.creds.region,
            method,
            path,
            host,
            expires_s,
            query,
            now,
        )

    def post_fields(self, policy: Callable[[str, str], str], now: dt.datetime) -> dict[str, str]:
        """The fields that sign a POST Object form with Signature V4:
        ``policy(credential, amz_date)`` is the form's base64 policy, which
        names them (x-amz-algorithm, x-amz-credential, x-amz-date, policy,
        x-amz-signature)."""
        when = sigv4.amz_date(now)
        credential = f"{self.creds.access_key_id}/{sigv4.scope(when[:8], self.creds.region)}"
        encoded = policy(credential, when)
        return {
            "x-amz-algorithm": sigv4.ALGORITHM,
            "x-amz-credential": credential,
            "x-amz-date": when,
            "policy": encoded,
            "x-amz-signature": sigv4.post_signature(self._key_of(now), encoded),
        }


class SignedStub:
    """A generated stub whose calls are signed: each unary-request call gets
    the signature of its request in its metadata. Client-streaming methods are
    handed out as they are: their callers sign the header when they create the
    call (``signer.metadata(path, header)``), since the header is not known
    to anyone else before the first write."""

    def __init__(self, stub: Any, service: Any, signer: Signer | None) -> None:
        self._stub = stub
        self._service = service.full_name
        self._signer = signer
        self._streaming = {m.name for m in service.methods if m.client_streaming}

    def path(self, method: str) -> str:
        return f"/{self._service}/{method}"

    def __getattr__(self, name: str) -> Any:
        mc = getattr(self._stub, name)
        signer = self._signer
        if signer is None or name in self._streaming:
            return mc
        path = self.path(name)

        def call(request: Any, *args: Any, metadata: Any = None, **kwargs: Any) -> Any:
            md = [*(metadata or ()), *signer.metadata(path, request)]
            return mc(request, *args, metadata=md, **kwargs)

        self.__dict__[name] = call
        return call


#: What this process's own calls to nodes' public services sign with (a node,
#: a replicator: the cluster's root credentials); see :func:`use_for_process`.
_process: list[Signer | None] = [None]


def use_for_process(creds: Credentials | None) -> None:
    """Make the stubs a cluster process opens to nodes sign with ``creds``."""
    _process[0] = Signer(creds) if creds is not None else None


def process_signer() -> Signer | None:
    return _process[0]


# --- secrets sealed at rest (the server side of access keys) ---------------


def secret_context(access_key_id: str) -> bytes:
    """The purpose a secret key is sealed for: its own access key id, so a
    sealed secret moved to another key id does not open."""
    return b"tristore-access-key:" + access_key_id.encode()


def new_access_key() -> tuple[str, str]:
    """A fresh (access key id, secret key) pair: ``TK`` + 18 characters, and 40
    characters of 240 random bits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    akid = "TK" + "".join(secrets.choice(alphabet) for _ in range(18))
    return akid, secrets.token_urlsafe(30)


def seal_secret(kms: LocalKeyFile, access_key_id: str, secret: str) -> bytes:
    return kms.seal(secret.encode(), secret_context(access_key_id))


def open_secret(kms: LocalKeyFile, access_key_id: str, blob: bytes) -> str:
    return kms.open(blob, secret_context(access_key_id)).decode()


def write_sealed_file(path: Path, kms: LocalKeyFile, access_key_id: str, secret: str) -> None:
    """Write a secret sealed under the master key, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(seal_secret(kms, access_key_id, secret)).decode() + "\n")
    os.replace(tmp, path)


def rewrap_sealed_file(path: Path, kms: LocalKeyFile, access_key_id: str) -> bool:
    """Seal the secret of ``path`` under the current master key (a rotation);
    True when the file changed. The old master key must still be held."""
    secret = read_sealed_file(path, kms, access_key_id)
    blob = base64.b64decode(path.read_text().strip(), validate=True)
    if kms.key_id_of(blob) == kms.current_key_id():
        return False
    write_sealed_file(path, kms, access_key_id, secret)
    return True


def read_sealed_file(path: Path, kms: LocalKeyFile, access_key_id: str) -> str:
    try:
        blob = base64.b64decode(path.read_text().strip(), validate=True)
    except FileNotFoundError:
        raise InvalidArgument(f"sealed secret file {path} does not exist") from None
    except ValueError:
        raise InvalidArgument(f"sealed secret file {path} is not base64") from None
    return open_secret(kms, access_key_id, blob)


def root_credentials(cfg: ClusterConfig) -> Credentials | None:
    """The cluster's root credentials from its config (None without them):
    what its own processes sign with when they call a node's public services."""
    auth = cfg.auth
    if not auth.root_access_key_id or not auth.root_secret_file:
        return None
    from tristore.kms import LocalKeyFile

    kms = LocalKeyFile(cfg.kms_key_file)
    secret = read_sealed_file(cfg.relative(auth.root_secret_file), kms, auth.root_access_key_id)
    return Credentials(auth.root_access_key_id, secret)


def remote_credentials(cfg: ClusterConfig, remote: RemoteSpec) -> Credentials | None:
    """What this cluster's replicators sign with at ``remote``."""
    if not remote.access_key_id or not remote.secret_file:
        return None
    from tristore.kms import LocalKeyFile

    kms = LocalKeyFile(cfg.kms_key_file)
    secret = read_sealed_file(cfg.relative(remote.secret_file), kms, remote.access_key_id)
    return Credentials(remote.access_key_id, secret)
