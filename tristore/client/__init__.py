"""The tristore SDK: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

::

    from tristore import Client
    with Client("127.0.0.1:7101,127.0.0.1:7102") as c:   # or Client(): TRISTORE_ENDPOINT
        c.create_bucket("b")
        c.put_object("b", "k", b"hello")
        assert c.get_object("b", "k") == b"hello"

Errors are the exceptions of :mod:`tristore.errors`, rebuilt from the server's
status. Calls fail over between endpoints on retriable errors.
"""

from tristore.client._body import CHUNK_SIZE, BodyInput
from tristore.client._transport import ENDPOINT_ENV, RetryPolicy, parse_endpoints
from tristore.client.aio import AsyncClient, AsyncObjectStream, Progress, RangeSpec
from tristore.client.sync import Client, ObjectStream
from tristore.credentials import Credentials

__all__ = [
    "CHUNK_SIZE",
    "ENDPOINT_ENV",
    "AsyncClient",
    "AsyncObjectStream",
    "BodyInput",
    "Client",
    "Credentials",
    "ObjectStream",
    "Progress",
    "RangeSpec",
    "RetryPolicy",
    "parse_endpoints",
]
