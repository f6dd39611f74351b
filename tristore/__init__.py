"""tristore: an S3-style object store that writes every object in three AZs.

The SDK::

    from tristore import Client, AsyncClient, errors

Every name here is imported on first use, so that server processes that only
need the core modules (config, stamps, placement) do not load the SDK, and the
``tristore`` command answers ``--help`` without loading the model, the SDK,
grpc or ``importlib.metadata``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tristore import errors
    from tristore.client import AsyncClient, AsyncObjectStream, Client, ObjectStream
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

    __version__: str

_MODEL = {
    "Acl",
    "BucketInfo",
    "ByteRange",
    "ClusterStatus",
    "Conditions",
    "CopyResult",
    "CopySource",
    "DeletedObject",
    "DeleteResult",
    "ListEntry",
    "ListPage",
    "NodeHealth",
    "NodeStatus",
    "ObjectInfo",
    "Tagging",
    "VersionEntry",
    "VersionPage",
}
#: Where each lazily imported name lives.
_LAZY: dict[str, str] = {
    **dict.fromkeys(_MODEL, "tristore.model"),
    **dict.fromkeys(
        ("AsyncClient", "AsyncObjectStream", "Client", "ObjectStream"), "tristore.client"
    ),
    **dict.fromkeys(("Destination", "Rule"), "tristore.replication"),
}

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


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tristore")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name == "errors":
        value = importlib.import_module("tristore.errors")
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module 'tristore' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
