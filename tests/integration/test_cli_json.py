"""``--json`` of the CLI against a real cluster: every command's document
parses and says what happened, and ``tristore presign`` links that plain HTTPS
(urllib, trusting the dev cluster's CA) can use, refused once expired or
altered. The document shapes are in docs/commands.md."""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import pytest

from tests.integration.cluster import ROOT, DevCluster, exported
from tristore import tls

# Adds and removes a user, runs `dev up` for its export lines: a cluster of its own.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300), pytest.mark.private_cluster]

SCHEMA = 1


def _doc(cluster: DevCluster, *argv: str, input: bytes | None = None) -> Any:
    """Run ``tristore ARGV --json`` and parse its stdout: one JSON document."""
    proc = cluster.cli(*argv, "--json", input=input)
    return json.loads(proc.stdout)


def _versioned(doc: dict[str, Any], command: str) -> dict[str, Any]:
    assert (doc.pop("schema"), doc.pop("command")) == (SCHEMA, command)
    return doc


def _s3_env(cluster: DevCluster) -> dict[str, str]:
    """``AWS_ENDPOINT_URL`` as ``dev up`` exports it (presign's default)."""
    return {"AWS_ENDPOINT_URL": cluster.s3_endpoint}


def _fetch(url: str, method: str = "GET", body: bytes | None = None) -> bytes:
    ctx = ssl.create_default_context(cafile=os.environ[tls.CA_BUNDLE_ENV])
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
        data: bytes = resp.read()
        return data


def _refused(url: str) -> tuple[int, str]:
    """The HTTP status and S3 error code of a request that must fail."""
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(url)
    with e.value:
        code = ET.fromstring(e.value.read()).findtext("Code") or ""
    return e.value.code, code


def test_object_and_admin_commands_print_their_documents(cluster: DevCluster) -> None:
    assert _versioned(_doc(cluster, "mb", "s3://cli-json"), "mb") == {"bucket": "cli-json"}
    cluster.cli("cp", "-", "s3://cli-json/a.txt", input=b"hello")
    stat = _doc(cluster, "stat", "s3://cli-json/a.txt")
    assert (stat["key"], stat["size"]) == ("a.txt", 5)
    listing = _doc(cluster, "ls", "s3://cli-json")
    assert [c["key"] for c in listing["contents"]] == ["a.txt"]
    assert _versioned(_doc(cluster, "du", "s3://cli-json"), "du")["bytes"] == 5

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["json-user"]},
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::cli-json/*"],
            }
        ],
    }
    put = _doc(cluster, "policy", "put", "s3://cli-json", "-", input=json.dumps(policy).encode())
    assert _versioned(put, "policy put") == {"bucket": "cli-json"}
    got = _versioned(_doc(cluster, "policy", "get", "s3://cli-json"), "policy get")
    assert got["bucket"] == "cli-json"
    assert got["policy"]["Statement"][0]["Action"] == ["s3:GetObject"]
    rm = _doc(cluster, "policy", "rm", "s3://cli-json")
    assert _versioned(rm, "policy rm") == {"bucket": "cli-json"}

    with cluster.client() as c:
        upload = c.create_multipart_upload("cli-json", "big.bin").upload_id
    abort = _doc(cluster, "mpu", "abort", "s3://cli-json/big.bin", upload)
    assert _versioned(abort, "mpu abort") == {
        "bucket": "cli-json",
        "key": "big.bin",
        "upload_id": upload,
    }
    assert _doc(cluster, "mpu", "ls", "s3://cli-json")["uploads"] == []

    deleted = _doc(cluster, "replication", "delete", "s3://cli-json")
    assert _versioned(deleted, "replication delete") == {"bucket": "cli-json"}
    replay = _doc(cluster, "replication", "dlq", "replay", "s3://cli-json")
    assert _versioned(replay, "replication dlq replay") == {
        "bucket": "cli-json",
        "requeued": [],
        "failed": [],
    }

    user = _versioned(_doc(cluster, "admin", "user", "add", "json-user"), "admin user add")
    assert (user["name"], user["role"], user["buckets"]) == ("json-user", "user", [])
    key = _doc(cluster, "admin", "key", "create", "json-user")
    revoked = _doc(cluster, "admin", "key", "revoke", key["access_key_id"])
    assert _versioned(revoked, "admin key revoke") == {"access_key_id": key["access_key_id"]}
    removed = _doc(cluster, "admin", "user", "rm", "json-user")
    assert _versioned(removed, "admin user rm") == {"name": "json-user"}
    assert "json-user" not in {u["name"] for u in _doc(cluster, "admin", "user", "ls")}
    assert _doc(cluster, "admin", "status")["nodes"]


def test_presigned_urls_from_the_cli(cluster: DevCluster) -> None:
    env = _s3_env(cluster)
    with cluster.client() as c:
        c.create_bucket("cli-links")
        c.put_object("cli-links", "dir/a b+ü.txt", b"shared")

    doc = cluster.cli("presign", "s3://cli-links/dir/a b+ü.txt", "--json", extra_env=env)
    link = _versioned(json.loads(doc.stdout), "presign")
    assert (link["method"], link["expires_in"], link["key"]) == ("GET", 3600, "dir/a b+ü.txt")
    assert link["url"].startswith(cluster.s3_endpoint + "/cli-links/dir/a%20b%2B%C3%BC.txt?")
    assert _fetch(link["url"]) == b"shared"

    # A PUT link: the body lands as the signer's write; plain output is the URL alone.
    put = cluster.cli(
        "presign", "s3://cli-links/up.bin", "--method", "put", "--expires-in", "60", extra_env=env
    )
    url = put.stdout.decode().strip()
    _fetch(url, "PUT", b"uploaded through a link")
    with cluster.client() as c:
        assert c.get_object("cli-links", "up.bin") == b"uploaded through a link"
        assert c.head_object("cli-links", "up.bin").size == len(b"uploaded through a link")

    # Altered: another key, or another signature, under the same query.
    parts = urlsplit(link["url"])
    other = f"{parts.scheme}://{parts.netloc}/cli-links/up.bin?{parts.query}"
    assert _refused(other) == (403, "SignatureDoesNotMatch")
    sig = parts.query.rsplit("X-Amz-Signature=", 1)[1]
    flipped = link["url"].replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert _refused(flipped) == (403, "SignatureDoesNotMatch")

    # Expired: one second, then past it.
    short = cluster.cli(
        "presign", "s3://cli-links/dir/a b+ü.txt", "--expires-in", "1", extra_env=env
    )
    time.sleep(2.5)
    assert _refused(short.stdout.decode().strip()) == (403, "AccessDenied")

    # Refused before any URL is made: an S3 code, exit 1, nothing on stdout.
    bad = cluster.cli(
        "presign", "s3://cli-links/k", "--expires-in", "604801", check=False, extra_env=env
    )
    assert (bad.returncode, bad.stdout) == (1, b"")
    assert bad.stderr.decode().startswith("InvalidArgument: --expires-in")
    assert ROOT.access_key_id in link["url"]


def test_dev_commands_print_their_documents(cluster: DevCluster) -> None:
    up = _versioned(_doc(cluster, "dev", "up", "--dir", str(cluster.dir)), "dev up")
    assert up["dir"] == str(cluster.dir.resolve()) and up["started"] == []
    assert {p["name"] for p in up["processes"]} == {p["name"] for p in cluster.status()}
    [one] = up["clusters"]
    # The same variables as the export lines of the text output.
    text = exported(cluster.dev("up").stdout.decode())
    assert one["env"] == text
    assert one["env"]["TRISTORE_ENDPOINT"] == cluster.endpoint
    assert one["env"]["AWS_ENDPOINT_URL"] == cluster.s3_endpoint

    kill = _doc(cluster, "dev", "kill", "w1", "--dir", str(cluster.dir))
    assert _versioned(kill, "dev kill") | {"pid": 0} == {
        "name": "w1",
        "pid": 0,
        "signal": "SIGTERM",
        "exited": True,
    }
    again = _versioned(_doc(cluster, "dev", "kill", "w1", "--dir", str(cluster.dir)), "dev kill")
    assert (again["pid"], again["exited"]) == (None, False)
    start = _versioned(_doc(cluster, "dev", "start", "w1", "--dir", str(cluster.dir)), "dev start")
    assert (start["name"], start["started"]) == ("w1", True) and start["pid"] > 0
    running = _doc(cluster, "dev", "start", "w1", "--dir", str(cluster.dir))
    assert _versioned(running, "dev start") == {"name": "w1", "pid": start["pid"], "started": False}
    restart = _doc(cluster, "dev", "restart", "w1", "--dir", str(cluster.dir))
    assert _versioned(restart, "dev restart") | {"pid": 0} == {
        "name": "w1",
        "stopped_pid": start["pid"],
        "signal": "SIGTERM",
        "pid": 0,
    }
    assert restart["pid"] not in (None, start["pid"])

    # down, then up again: the whole cluster, in both documents.
    names = {p["name"] for p in up["processes"]}
    down = _versioned(_doc(cluster, "dev", "down", "--dir", str(cluster.dir)), "dev down")
    assert set(down["stopped"]) == names
    assert down["data"] == [str(cluster.dir.resolve() / "data")]
    back = _versioned(_doc(cluster, "dev", "up", "--dir", str(cluster.dir)), "dev up")
    assert set(back["started"]) == names and all(p["up"] for p in back["processes"])
