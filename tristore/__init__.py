"""tristore: an S3-style object store that writes every object in three AZs.

The SDK::

    from tristore import Client, AsyncClient, errors

The client classes are imported on first use, so that server processes that
only need the core modules (config, stamps, placement) do not load the SDK.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

from tristore import errors
from tristore.model import (
    Acl,
    BucketInfo,
    ByteRange,
    ClusterStatus,
    Conditions,
    CopyResult,
    CopySource,
    DeletedObject,
    DeleteResult,
    ListEntry,
    ListPage,
    NodeHealth,
    NodeStatus,
    ObjectInfo,
    Tagging,
    VersionEntry,
    VersionPage,
)
from tristore.replication import Destination, Rule

if TYPE_CHECKING:
    from tristore.client import AsyncClient, AsyncObjectStream, Client, ObjectStream

try:
    __version__ = _metadata.version("tristore")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

_LAZY = {"AsyncClient", "AsyncObjectStream", "Client", "ObjectStream"}

__all__ = [
    "Acl",
    "AsyncClient",
    "AsyncObjectStream",
    "BucketInfo",
    "ByteRange",
    "Client",
    "ClusterStatus",
    "Conditions",
    "CopyResult",
    "CopySource",
    "DeleteResult",
    "DeletedObject",
    "Destination",
    "ListEntry",
    "ListPage",
    "NodeHealth",
    "NodeStatus",
    "ObjectInfo",
    "ObjectStream",
    "Rule",
    "Tagging",
    "VersionEntry",
    "VersionPage",
    "__version__",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from tristore import client

        return getattr(client, name)
    raise AttributeError(f"module 'tristore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
