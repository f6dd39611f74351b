"""The replication commands without a cluster: flags to a rule, rules files,
the rules table and the status counting."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tristore.cli import replication as rep
from tristore.cli.main import build_parser, run
from tristore.errors import InvalidArgument, InvalidBucketName, InvalidStorageClass
from tristore.model import VersionEntry
from tristore.replication import COMPLETED, FAILED, PENDING, REPLICA, Destination, Rule

pytestmark = pytest.mark.unit

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def entry(key: str, vid: str = "null", *, marker: bool = False) -> VersionEntry:
    return VersionEntry(key, vid, False, marker, 0 if marker else 1, "etag", T0)


# --- flags to a rule ---------------------------------------------------------------


def test_put_builds_one_rule_from_its_flags() -> None:
    args = parse(
        "replication", "put", "s3://src", "--to", "east/dst", "--to", "west/dst2",
        "--id", "logs", "--prefix", "logs/", "--tag", "a=1", "--tag", "b=x=y",
        "--priority", "7", "--delete-markers", "--replica-modifications",
        "--storage-class", "GLACIER", "--disabled",
    )  # fmt: skip
    assert args.func is rep.cmd_put
    assert rep.rule_from_args(args) == Rule(
        id="logs",
        destinations=(
            Destination("east", "dst", "GLACIER"),
            Destination("west", "dst2", "GLACIER"),
        ),
        priority=7,
        enabled=False,
        prefix="logs/",
        tags={"a": "1", "b": "x=y"},
        delete_markers=True,
        replica_modifications=True,
    )


def test_put_defaults() -> None:
    rule = rep.rule_from_args(parse("replication", "put", "s3://src", "--to", "east/dst"))
    assert rule == Rule(id="rule-1", destinations=(Destination("east", "dst"),))
    assert rule.enabled and rule.priority == 0 and not rule.delete_markers


@pytest.mark.parametrize(
    ("argv", "exc", "message"),
    [
        ([], InvalidArgument, "--to CLUSTER/BUCKET"),
        (["--to", "dst"], InvalidArgument, "CLUSTER/BUCKET"),
        (["--to", "/dst"], InvalidArgument, "CLUSTER/BUCKET"),
        (["--to", "east/"], InvalidArgument, "CLUSTER/BUCKET"),
        (["--to", "east/dst/k"], InvalidArgument, "CLUSTER/BUCKET"),
        (["--to", "east/D"], InvalidBucketName, "'D'"),
        (["--to", "east/dst", "--to", "east/dst"], InvalidArgument, "given twice"),
        (["--to", "east/dst", "--tag", "novalue"], InvalidArgument, "NAME=VALUE"),
        (["--to", "east/dst", "--storage-class", "COLD"], InvalidStorageClass, "COLD"),
    ],
)
def test_bad_flags(argv: list[str], exc: type[Exception], message: str) -> None:
    args = parse("replication", "put", "s3://src", *argv)
    with pytest.raises(exc, match=message):
        rep.rule_from_args(args)


# --- rules files -------------------------------------------------------------------

RULE = Rule(
    id="r1",
    destinations=(Destination("east", "dst", "STANDARD_IA", "ops"),),
    priority=2,
    prefix="p/",
    tags={"k": "v"},
    delete_markers=True,
)


def test_rules_file_round_trips_to_json(tmp_path: Path) -> None:
    other = Rule(id="r2", destinations=(Destination("west", "dst"),), enabled=False)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([RULE.to_json(), other.to_json()]))
    assert rep.read_rules_file(str(path)) == (RULE, other)
    # What `get --json` prints is read back too.
    assert rep.rules_from_json(json.dumps(rep.rules_json("src", [RULE]))) == (RULE,)


def test_rules_file_fields_have_defaults() -> None:
    text = '[{"id": "r", "destinations": [{"cluster": "east", "bucket": "dst"}]}]'
    assert rep.rules_from_json(text) == (Rule("r", (Destination("east", "dst"),)),)


def _dest(**extra: object) -> dict[str, object]:
    return {"cluster": "east", "bucket": "dst", **extra}


def _rule(**extra: object) -> dict[str, object]:
    return {"id": "r", "destinations": [_dest()], **extra}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "is not JSON"),
        ('{"id": "r"}', "must hold a JSON list of rules"),
        ("[]", "holds no rules"),
        ('["r"]', "rule 1 must be a JSON object"),
        (json.dumps([{"destinations": [_dest()]}]), "rule 1 lacks id"),
        (json.dumps([_rule(), {"id": "r2"}]), "rule 2 lacks destinations"),
        (json.dumps([_rule(prefx="p/")]), "unknown field(s) prefx"),
        (json.dumps([_rule(priority="high")]), "priority must be an integer"),
        (json.dumps([_rule(priority=True)]), "priority must be an integer"),
        (json.dumps([_rule(delete_markers="false")]), "delete_markers must be true or false"),
        (json.dumps([_rule(destinations={})]), "destinations must be a list"),
        (json.dumps([_rule(tags=["a"])]), "tags must be an object"),
        (json.dumps([_rule(tags={"a": 1})]), "tags must map names to strings"),
        (json.dumps([_rule(status="On")]), "Enabled or Disabled"),
        (json.dumps([_rule(destinations=["east/dst"])]), "destination 1 must be a JSON object"),
        (json.dumps([_rule(destinations=[{"cluster": "east"}])]), "destination 1 lacks bucket"),
        (json.dumps([_rule(destinations=[_dest(region="x")])]), "unknown field(s) region"),
    ],
)
def test_malformed_rules_files_are_refused_clearly(doc: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        rep.rules_from_json(doc, "rules.json")
    assert info.value.message.startswith("rules.json"), info.value.message
    assert message in info.value.message


def test_missing_rules_file_is_an_os_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.json"
    assert run(["replication", "put", "s3://src", "--file", str(missing)]) == 1
    assert capsys.readouterr().err == f"FileNotFoundError: No such file or directory: {missing}\n"


# --- checks before any connection ----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["put", "s3://src/k", "--to", "east/dst"], "object URL"),
        (["put", "s3://src"], "--to CLUSTER/BUCKET"),
        (["put", "s3://src", "--file", "r.json", "--to", "e/dst"], "--to: not with --file"),
        (
            ["put", "s3://src", "--file", "r.json", "--prefix", "p", "--disabled"],
            "--prefix and --disabled: not with --file",
        ),
        (["get", "s3://src/k"], "object URL"),
        (["delete", "s3://Src"], "InvalidBucketName"),
        (["status", "s3://src/k", "--limit", "5"], "--limit: only with s3://BUCKET"),
        (["status", "s3://src", "--version-id", "null"], "--version-id: only with"),
        (["status", "nope"], "s3://BUCKET[/KEY]"),
    ],
)
def test_refused_before_connecting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRISTORE_ENDPOINT", raising=False)  # a connection attempt would say so
    assert run(["replication", *argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err, err
    assert "TRISTORE_ENDPOINT" not in err


def test_replication_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse("replication")
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


# --- the rules table -----------------------------------------------------------------


def test_rules_table() -> None:
    plain = Rule(id="all", destinations=(Destination("east", "a"), Destination("west", "b")))
    header, first, second = rep.format_rules([RULE, plain]).splitlines()
    assert header.split("  ")[0] == "ID"
    for column in rep.RULE_COLUMNS:
        assert column in header
    cells = [c.strip() for c in first.split("  ") if c.strip()]
    assert cells == ["r1", "Enabled", "2", "p/", "k=v", "east/dst (STANDARD_IA, owner ops)", "yes"]
    cells = [c.strip() for c in second.split("  ") if c.strip()]
    assert cells == ["all", "Enabled", "0", "-", "-", "east/a, west/b", "no"]
    # Columns line up: each row's destinations start where the header's does.
    start = header.index("DESTINATIONS")
    assert first[start:].startswith("east/dst") and second[start:].startswith("east/a")


def test_disabled_rule_and_tags_are_sorted() -> None:
    dests = (Destination("e", "dst"),)
    r = Rule(id="x", destinations=dests, enabled=False, tags={"b": "2", "a": ""})
    assert rep.rule_row(r)[1] == "Disabled"
    assert rep.rule_row(r)[4] == "a=,b=2"


# --- status counting -----------------------------------------------------------------


def test_count_statuses() -> None:
    statuses = {"a": PENDING, "b": COMPLETED, "c": COMPLETED, "d": "", "e": FAILED, "f": REPLICA}
    entries = [entry(k) for k in statuses] + [entry("m", marker=True)]
    count = rep.count_statuses(entries, lambda e: statuses[e.key], limit=100)
    assert count.counts == {PENDING: 1, COMPLETED: 2, FAILED: 1, REPLICA: 1, "none": 1}
    assert (count.versions, count.delete_markers, count.gone, count.truncated) == (6, 1, 0, False)
    assert rep.status_notes(count, 100) == ["1 delete marker(s) not counted (HEAD has no status)"]


def test_count_statuses_stops_at_the_limit_without_reading_further() -> None:
    read: list[str] = []

    def entries() -> Iterator[VersionEntry]:
        for k in "abcdef":
            read.append(k)
            yield entry(k)

    count = rep.count_statuses(entries(), lambda e: COMPLETED, limit=3)
    assert count.counts[COMPLETED] == 3 and count.truncated
    assert read == ["a", "b", "c", "d"]  # one past the limit, to know there is more
    assert "stopped after 3" in rep.status_notes(count, 3)[-1]
    # Exactly the limit: nothing is left out.
    assert not rep.count_statuses([entry("a")], lambda e: COMPLETED, limit=1).truncated


def test_count_statuses_gone_and_unknown_statuses() -> None:
    count = rep.count_statuses(
        [entry("a"), entry("b")], lambda e: None if e.key == "a" else "LATER", limit=10
    )
    assert count.gone == 1 and count.counts["LATER"] == 1 and count.versions == 1
    assert list(count.counts)[:5] == list(rep.STATUSES)
    assert "1 version(s) deleted while counting" in rep.status_notes(count, 10)


def test_count_statuses_limit_must_be_positive() -> None:
    with pytest.raises(InvalidArgument, match="--limit"):
        rep.count_statuses([], lambda e: "", limit=0)


def test_status_count_table_and_json() -> None:
    count = rep.count_statuses([entry("a")], lambda e: PENDING, limit=10)
    lines = rep.format_status_count(count).splitlines()
    assert lines[0].split() == ["STATUS", "VERSIONS"]
    assert [ln.split() for ln in lines[1:]] == [
        ["PENDING", "1"],
        ["COMPLETED", "0"],
        ["FAILED", "0"],
        ["REPLICA", "0"],
        ["none", "0"],
    ]
    assert count.to_json() == {
        "counts": {"PENDING": 1, "COMPLETED": 0, "FAILED": 0, "REPLICA": 0, "none": 0},
        "versions": 1,
        "delete_markers": 0,
        "gone": 0,
        "truncated": False,
    }
