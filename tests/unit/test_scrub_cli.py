"""``tristore admin scrub`` without a cluster: flags, the summary, JSON, exit
codes, the ScrubReport <-> protobuf conversion, and the scrub's config checks."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import pytest

from tristore import config, convert
from tristore.cli import admin_scrub
from tristore.errors import InvalidArgument, ServiceUnavailable
from tristore.model import ScrubReport

pytestmark = pytest.mark.unit


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tristore admin")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", default=None)
    actions = parser.add_subparsers(dest="admin_command", required=True)
    admin_scrub.add_parser(actions, common)
    return parser.parse_args(list(argv))


def reports(left: bool = False, error: str = "") -> list[ScrubReport]:
    return [
        ScrubReport("a1", 100, 3, 5000),
        ScrubReport("b1", 50, 0, 900, done=False),
        ScrubReport("a1", 210, 8, 9_000_000, 1, 1, 1 if left else 2, done=True),
        ScrubReport("b1", 120, 4, 4_000_000, error=error, done=True),
    ]


class FakeClient:
    def __init__(self, sent: list[ScrubReport]) -> None:
        self.sent = sent
        self.calls: list[str] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def scrub(self, bucket: str = "") -> Iterator[ScrubReport]:
        self.calls.append(bucket)
        return iter(self.sent)


def use(monkeypatch: pytest.MonkeyPatch, sent: list[ScrubReport]) -> FakeClient:
    client = FakeClient(sent)
    monkeypatch.setattr(admin_scrub, "connect", lambda endpoint: client)
    return client


def test_flags() -> None:
    args = parse("scrub")
    assert (args.bucket, args.json, args.func) == (None, False, admin_scrub.cmd_scrub)
    args = parse("scrub", "--bucket", "s3://photos", "--json")
    assert (args.bucket, args.json) == ("s3://photos", True)


def test_summary_and_exit_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = use(monkeypatch, reports())
    assert admin_scrub.cmd_scrub(parse("scrub", "--bucket", "s3://photos")) == 0
    assert fake.calls == ["photos"]
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NODE", "RECORDS", "CHUNKS"]
    assert lines[1].split() == ["a1", "210", "8", "9000000", "1", "1", "2", "0"]
    assert lines[3].split() == ["(total)", "330", "12", "13000000", "1", "1", "2", "0"]
    assert err == ""


def test_json_and_exit_1_when_damage_is_left(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, reports(left=True, error="node b1 (az-b): UNAVAILABLE"))
    assert admin_scrub.cmd_scrub(parse("scrub", "--json")) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert (doc["schema"], doc["command"], doc["bucket"]) == (1, "admin scrub", "")
    assert (doc["corrupt_records"], doc["corrupt_chunks"], doc["repaired"]) == (1, 1, 1)
    assert doc["unrepaired"] == 1
    assert [n["node"] for n in doc["nodes"]] == ["a1", "b1"]
    assert doc["nodes"][1]["error"].startswith("node b1")
    assert "1 damaged value(s) not repaired" in err and "b1" in err


def test_a_stream_without_final_reports_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, reports()[:2])
    with pytest.raises(ServiceUnavailable):
        admin_scrub.cmd_scrub(parse("scrub"))


def test_report_round_trips_through_protobuf() -> None:
    r = ScrubReport("c2", 1, 2, 3, 4, 5, 6, "rocksdb", done=True)
    assert convert.scrub_report_from_pb(convert.scrub_report_to_pb(r)) == r
    assert r.unrepaired == 3


@pytest.mark.parametrize(
    "env",
    [
        {"TRISTORE_NODE_SCRUB_INTERVAL_S": "-1"},
        {"TRISTORE_NODE_SCRUB_BYTES_PER_S": "0"},
        {"TRISTORE_NODE_SCRUB_STEP_BYTES": "0"},
    ],
)
def test_bad_scrub_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument, match="scrub"):
        config.parse({}, env)
