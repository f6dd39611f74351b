"""``tristore admin repair`` without a cluster: flags, the summary, JSON, exit
codes, and the RepairReport <-> protobuf conversion."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tristore import convert
from tristore.cli import admin_repair
from tristore.errors import InvalidBucketName, ServiceUnavailable
from tristore.model import RepairReport

pytestmark = pytest.mark.unit

MISSING = {"az-a": 0, "az-b": 12, "az-c": 0}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tristore admin")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", default=None)
    actions = parser.add_subparsers(dest="admin_command", required=True)
    admin_repair.add_parser(actions, common)
    return parser.parse_args(list(argv))


def reports(failed: int = 0) -> list[RepairReport]:
    return [
        RepairReport("photos", 200, 5, 5, {"az-a": 0, "az-b": 5, "az-c": 0}),
        RepairReport("photos", 310, 9, 10, {"az-a": 0, "az-b": 10, "az-c": 0}, failed),
        RepairReport("docs", 40, 2, 2, {"az-a": 0, "az-b": 2, "az-c": 0}),
        RepairReport("", 350, 11, 12, MISSING, failed, done=True),
    ]


class FakeClient:
    def __init__(self, sent: list[RepairReport]) -> None:
        self.sent = sent
        self.calls: list[tuple[str, bool]] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def repair(self, bucket: str = "", dry_run: bool = False) -> Iterator[RepairReport]:
        self.calls.append((bucket, dry_run))
        return iter(self.sent)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient(reports())
    monkeypatch.setattr(admin_repair, "connect", lambda endpoint: client)
    return client


def test_flags() -> None:
    args = parse("repair")
    assert (args.bucket, args.dry_run, args.json, args.func) == (
        None,
        False,
        False,
        admin_repair.cmd_repair,
    )
    args = parse("repair", "--bucket", "photos", "--dry-run", "--json")
    assert (args.bucket, args.dry_run, args.json) == ("photos", True, True)


def test_summary_table_and_exit_0(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin_repair.cmd_repair(parse("repair")) == 0
    assert fake.calls == [("", False)]
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["BUCKET", "KEYS", "REPAIRED", "WRITTEN", "FAILED"]
    assert lines[1].split() == ["photos", "310", "9", "10", "0"]
    assert lines[2].split() == ["docs", "40", "2", "2", "0"]
    assert lines[3].split() == ["(total)", "350", "11", "12", "0"]
    assert lines[5].split() == ["AZ", "MISSING"]
    assert [ln.split() for ln in lines[6:]] == [["az-a", "0"], ["az-b", "12"], ["az-c", "0"]]
    assert err == ""  # stderr is no terminal here: no progress line


def test_dry_run_says_so(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin_repair.cmd_repair(parse("repair", "--bucket", "s3://photos", "--dry-run")) == 0
    assert fake.calls == [("photos", True)]
    out = capsys.readouterr().out
    assert out.startswith("dry run: nothing was written")
    assert "TO REPAIR" in out


def test_json_is_one_object(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin_repair.cmd_repair(parse("repair", "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "bucket": "",
        "keys_checked": 350,
        "keys_repaired": 11,
        "versions_written": 12,
        "missing_by_az": MISSING,
        "keys_failed": 0,
        "dry_run": False,
        "buckets": [
            {
                "bucket": "photos",
                "keys_checked": 310,
                "keys_repaired": 9,
                "versions_written": 10,
                "missing_by_az": {"az-a": 0, "az-b": 10, "az-c": 0},
                "keys_failed": 0,
            },
            {
                "bucket": "docs",
                "keys_checked": 40,
                "keys_repaired": 2,
                "versions_written": 2,
                "missing_by_az": {"az-a": 0, "az-b": 2, "az-c": 0},
                "keys_failed": 0,
            },
        ],
    }


def test_failed_keys_exit_1(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    fake.sent = reports(failed=3)
    assert admin_repair.cmd_repair(parse("repair", "--json")) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["keys_failed"] == 3
    assert "repair again when every AZ answers" in err


def test_a_stream_without_its_final_report_is_an_error(fake: FakeClient) -> None:
    fake.sent = reports()[:-1]
    with pytest.raises(ServiceUnavailable, match="before its final report"):
        admin_repair.cmd_repair(parse("repair"))


def test_a_bad_bucket_is_refused_before_connecting(fake: FakeClient) -> None:
    with pytest.raises(InvalidBucketName):
        admin_repair.cmd_repair(parse("repair", "--bucket", "Not_A_Bucket"))
    assert fake.calls == []


def test_progress_line() -> None:
    line = admin_repair.render_line(RepairReport("photos", 1200, 37, 40, {}, 1), 2.0)
    assert line == "photos  1200 keys  37 repaired  1 failed  600/s"


def test_report_survives_protobuf() -> None:
    for r in reports(failed=2):
        assert convert.repair_report_from_pb(convert.repair_report_to_pb(r)) == r


def test_report_json_sorts_azs() -> None:
    doc: dict[str, Any] = RepairReport("b", 1, missing_by_az={"az-c": 1, "az-a": 0}).to_json()
    assert list(doc["missing_by_az"]) == ["az-a", "az-c"]


def test_progress_bar_redraws_one_line() -> None:
    out = io.StringIO()
    now = [0.0]
    bar = admin_repair.RepairProgress(out, clock=lambda: now[0])
    bar.update(RepairReport("photos", 10, 0, 0, {}))  # too early: nothing yet
    assert out.getvalue() == ""
    now[0] = 2.0
    bar.update(RepairReport("photos", 400, 3, 3, {}))
    bar.close()
    line = "photos  400 keys  3 repaired  0 failed  200/s"
    assert out.getvalue() == f"\r{line}\r{line}\n"
