"""CPU cost of signing a call (client) and verifying it (node), per request.

``python -m bench.sign``: times the SDK's signer and the node guard's
verification steps (parse the metadata, check the time window, digest the
message, recompute the signature with the cached signing key, compare) on one
core, for a GET request and a PUT header with metadata.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tristore import credentials, sigv4
from tristore.pb import objects_pb2

CREDS = credentials.Credentials("TKBENCH00000000000001", "x" * 40)


def _verify(md: list[tuple[str, str]], method: str, msg: Any, keys: dict[Any, bytes]) -> None:
    signed = sigv4.parse(md)
    assert signed is not None
    sigv4.check_time(signed)
    slot = (signed.access_key_id, signed.date, signed.region)
    key = keys.get(slot)
    if key is None:
        key = keys[slot] = sigv4.signing_key(CREDS.secret_access_key, signed.date, signed.region)
    sha = sigv4.payload_sha256(msg)
    want = sigv4.expected(signed, key, method, sigv4.resource_of(msg), sha)
    assert sigv4.matches(want, signed.signature) and sha == signed.payload_sha256


def measure(n: int = 20_000) -> list[dict[str, Any]]:
    cases = {
        "GetObject": objects_pb2.GetObjectRequest(bucket="bench", key="some/key/0001"),
        "PutObject": objects_pb2.PutObjectHeader(
            bucket="bench",
            key="some/key/0001",
            content_type="application/octet-stream",
            metadata={f"k{i}": "v" * 16 for i in range(8)},
        ),
    }
    out = []
    for name, msg in cases.items():
        method = f"/tristore.v1.ObjectService/{name}"
        signer = credentials.Signer(CREDS)
        t0 = time.process_time()
        mds = [signer.metadata(method, msg) for _ in range(n)]
        sign_us = (time.process_time() - t0) / n * 1e6
        keys: dict[Any, bytes] = {}
        t0 = time.process_time()
        for md in mds:
            _verify(md, method, msg, keys)
        verify_us = (time.process_time() - t0) / n * 1e6
        out.append({"rpc": name, "sign_us": round(sign_us, 1), "verify_us": round(verify_us, 1)})
    return out


def main() -> None:
    rows = measure()
    for r in rows:
        print(f"{r['rpc']:10} sign {r['sign_us']:6.1f} us   verify {r['verify_us']:6.1f} us (CPU)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
