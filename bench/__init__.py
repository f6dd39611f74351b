"""Benchmarks (``make bench``, ``make bench-compare``, ...).

The clusters a benchmark starts run with authentication on, as users run
them: like a user who exported a key before ``dev up``, the benchmark exports
one root key (``TRISTORE_ACCESS_KEY_ID`` / ``TRISTORE_SECRET_ACCESS_KEY``) into
its own environment unless one is set; ``dev up`` adopts it for the clusters
it creates, and every client signs with it.
"""

from __future__ import annotations

import os

from tristore import credentials

if not os.environ.get(credentials.ACCESS_KEY_ENV):
    _akid, _secret = credentials.new_access_key()
    os.environ[credentials.ACCESS_KEY_ENV] = _akid
    os.environ[credentials.SECRET_KEY_ENV] = _secret
