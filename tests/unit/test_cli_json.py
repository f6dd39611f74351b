"""``--json`` across the CLI, without a cluster: which commands take it, the
shape of the documents (``{"schema": 1, "command": ...}``), and ``presign``,
which signs locally and so runs whole in-process.
tests/integration/test_cli_json.py parses every command's document against a
real cluster."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from node.s3 import post_policy
from tristore import errors, sigv4
from tristore.cli.main import build_parser, run
from tristore.cli.util import JSON_SCHEMA

pytestmark = pytest.mark.unit

AKID, SECRET = "TKJSONTEST000001", "json-test-secret"
S3 = "https://127.0.0.1:7601"
#: Commands whose stdout is not theirs to shape: ``cat`` writes the object's
#: body, ``serve`` runs a process in the foreground (its logs go to stderr).
NO_JSON = {"cat", "serve"}


def _leaves(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[str, set[str]]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {" ".join(path): {o for a in p._actions for o in a.option_strings}}
    out: dict[str, set[str]] = {}
    for name, sp in subs[0].choices.items():
        out |= _leaves(sp, (*path, name))
    return out


def test_every_command_but_cat_and_serve_takes_json() -> None:
    leaves = _leaves(build_parser())
    assert set(leaves) >= NO_JSON
    assert {"presign", "dev up", "policy get", "admin key revoke"} <= set(leaves)
    lacking = sorted(name for name, opts in leaves.items() if "--json" not in opts)
    assert lacking == sorted(NO_JSON)


@pytest.fixture
def signer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRISTORE_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("TRISTORE_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("TRISTORE_PROFILE", raising=False)
    monkeypatch.delenv("TRISTORE_REGION", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", S3)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_presign_prints_one_signed_url(
    signer_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "presign", "s3://bkt/dir/a b.txt")
    assert (code, err) == (0, "")
    url = out.strip()
    assert "\n" not in url
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "127.0.0.1:7601",
        "/bkt/dir/a%20b.txt",
    )
    query = dict(parse_qsl(parts.query))
    assert query["X-Amz-Expires"] == "3600"
    assert query["X-Amz-Credential"].startswith(f"{AKID}/")


def test_presign_json_is_the_documented_object(
    signer_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys, "presign", "s3://bkt/k", "--method", "put", "--expires-in", "600", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {
        "schema", "command", "url", "method", "bucket", "key", "version_id", "expires_in",
        "expires",
    }  # fmt: skip
    assert (doc["schema"], doc["command"], doc["method"]) == (JSON_SCHEMA, "presign", "PUT")
    assert (doc["bucket"], doc["key"], doc["version_id"], doc["expires_in"]) == (
        "bkt", "k", None, 600,
    )  # fmt: skip
    # The URL is SigV4's presigned query of PUT /bkt/k at its own X-Amz-Date,
    # and "expires" is that date plus expires_in.
    query = parse_qsl(urlsplit(doc["url"]).query)
    when = dt.datetime.strptime(dict(query)["X-Amz-Date"], sigv4.DATE_FORMAT).replace(tzinfo=dt.UTC)
    key = sigv4.signing_key(SECRET, when.strftime("%Y%m%d"), sigv4.DEFAULT_REGION)
    expected = sigv4.presign_query(
        AKID, key, sigv4.DEFAULT_REGION, "PUT", "/bkt/k", "127.0.0.1:7601", 600, now=when
    )
    assert query == expected
    assert dt.datetime.fromisoformat(doc["expires"]) == when + dt.timedelta(seconds=600)


def test_presign_version_and_endpoint_flags(
    signer_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    vid = "000001a2082a915f0000000000010002"
    code, out, _ = _run(
        capsys, "presign", "s3://bkt/k", "--version-id", vid, "--s3-endpoint", "http://h:9000"
    )
    assert code == 0
    parts = urlsplit(out.strip())
    assert (parts.scheme, parts.netloc) == ("http", "h:9000")
    assert dict(parse_qsl(parts.query))["versionId"] == vid


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--expires-in", "0"], "InvalidArgument: --expires-in must be a whole number of seconds"),
        (["--expires-in", "604801"], "from 1 to 604800 (7 days"),
        (["--expires-in", "-5"], "not '-5'"),
        (["--expires-in", "1h"], "not '1h'"),
        (["--version-id", "nope"], "InvalidArgument: invalid version id 'nope'"),
        (["--s3-endpoint", "127.0.0.1:7601"], "InvalidArgument: endpoint_url '127.0.0.1:7601'"),
    ],
)
def test_presign_refuses_bad_arguments_with_an_s3_code(
    signer_env: None, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = _run(capsys, "presign", "s3://bkt/k", *argv)
    assert (code, out) == (1, "")
    assert says in err and err.count("\n") == 1


def test_presign_needs_an_object_url_credentials_and_an_s3_endpoint(
    signer_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "presign", "s3://bkt")
    assert code == 1 and err.startswith("InvalidArgument: ") and "names a bucket but no key" in err
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    code, _, err = _run(capsys, "presign", "s3://bkt/k")
    assert code == 1 and "--s3-endpoint" in err and "AWS_ENDPOINT_URL" in err
    monkeypatch.setenv("AWS_ENDPOINT_URL", S3)
    monkeypatch.delenv("TRISTORE_ACCESS_KEY_ID")
    monkeypatch.delenv("TRISTORE_SECRET_ACCESS_KEY")
    monkeypatch.setenv("TRISTORE_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    code, _, err = _run(capsys, "presign", "s3://bkt/k")
    assert code == 1 and err.startswith(
        "InvalidArgument: a presigned URL is signed with an access key"
    )


def test_presign_method_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(["presign", "s3://bkt/k", "--method", "PATCH"])
    assert info.value.code == 2
    assert "invalid choice: 'PATCH'" in capsys.readouterr().err


def test_presign_post_prints_a_curl_command_of_a_form_the_door_takes(
    signer_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """--method POST: the curl command that uploads FILE with a browser form
    (each field a --form-string, the file last); --json: its URL and fields.
    The form is one the door's checks take (node/s3/post_policy.py)."""
    argv = ["presign", "s3://bkt/up/${filename}", "--method", "post", "--max-size", "1KiB"]
    argv += ["--field", "Content-Type=text/plain; charset=utf-8", "--field", "x-amz-meta-a=1"]
    code, out, err = _run(capsys, *argv)
    assert (code, err) == (0, "")
    words = shlex.split(out)
    assert words[:3] == ["curl", "--cacert", "$AWS_CA_BUNDLE"]
    assert words[-3:] == ["-F", "file=@FILE", "https://127.0.0.1:7601/bkt"]
    sent = dict(w.split("=", 1) for w in words[4:-3:2])
    assert set(words[3:-3:2]) == {"--form-string"}
    code, out, _ = _run(capsys, *argv, "--json")
    doc = json.loads(out)
    assert (doc["command"], doc["method"], doc["url"]) == ("presign", "POST", words[-1])
    assert (doc["bucket"], doc["key"], doc["expires_in"]) == ("bkt", "up/${filename}", 3600)
    for fields in (sent, doc["fields"]):
        fields = {k.lower(): v for k, v in fields.items()}
        assert fields["content-type"] == "text/plain; charset=utf-8"
        signed = sigv4.parse_post(fields)
        key = sigv4.signing_key(SECRET, signed.date, signed.region)
        assert sigv4.post_signature(key, fields["policy"]) == signed.signature
        policy = post_policy.parse(fields["policy"])
        assert policy.length_range == (0, 1024)
        post_policy.check(policy, {**fields, "key": "up/notes.txt"}, "bkt")
        with pytest.raises(errors.AccessDenied):
            post_policy.check(policy, {**fields, "key": "up/a", "x-amz-meta-a": "2"}, "bkt")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--field", "a=1"], "--field and --max-size are for a form: --method POST"),
        (["--max-size", "1MiB"], "--field and --max-size are for a form"),
        (["--method", "POST", "--max-size", "lots"], "'lots' is not a size"),
        (["--method", "POST", "--field", "novalue"], "must be of the form NAME=VALUE"),
        (["--method", "POST", "--field", "key=x"], "fields may not set 'key'"),
        (["--method", "POST", "--version-id", "000001a2082a915f0000000000010002"],
         "--version-id is not for a form"),
    ],
)  # fmt: skip
def test_presign_post_refuses_what_a_form_cannot_be(
    signer_env: None, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = _run(capsys, "presign", "s3://bkt/k", *argv)
    assert (code, out) == (1, "")
    assert err.startswith("InvalidArgument: ") and says in err, err


def test_dev_down_json_without_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "dev", "down", "--dir", str(tmp_path / "none"), "--json")
    assert code == 0 and "nothing to stop" in err
    assert json.loads(out) == {
        "schema": JSON_SCHEMA,
        "command": "dev down",
        "dir": str((tmp_path / "none").resolve()),
        "stopped": [],
        "data": [],
    }


def test_root_credentials_json_matches_its_export_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Copies of compose's maps: the files they name relative to themselves
    # (keys/, tls/) are made beside them.
    deploy = tmp_path / "compose"
    deploy.mkdir()
    for name in ("east.toml", "west.toml"):
        shutil.copy(Path(__file__).resolve().parents[2] / "deploy" / "compose" / name, deploy)
    configs = ["--config", str(deploy / "east.toml"), "--config", str(deploy / "west.toml")]
    code, _, err = _run(capsys, "admin", "bootstrap", *configs, "--dest", str(tmp_path))
    assert code == 0, err
    east = ["admin", "root-credentials", "--config", str(deploy / "east.toml")]
    code, out, err = _run(capsys, *east, "--dest", str(tmp_path))
    assert code == 0, err
    exports = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
    code, out, err = _run(capsys, *east, "--dest", str(tmp_path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc == {
        "schema": JSON_SCHEMA,
        "command": "admin root-credentials",
        "access_key_id": exports["TRISTORE_ACCESS_KEY_ID"],
        "secret_access_key": exports["TRISTORE_SECRET_ACCESS_KEY"],
    }
    assert exports["AWS_SECRET_ACCESS_KEY"] == doc["secret_access_key"]
