"""The replication commands without a cluster: flags to a rule, rules files,
the rules table and the status counting."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tristore.cli import replication as rep
from tristore.cli.main import build_parser, run
from tristore.cli.util import CliError
from tristore.errors import (
    InvalidArgument,
    InvalidBucketName,
    InvalidRequest,
    InvalidStorageClass,
    SSECustomerKeyRequired,
)
from tristore.model import VersionEntry, VersionPage
from tristore.replication import COMPLETED, FAILED, PENDING, REPLICA, Destination, Rule

pytestmark = pytest.mark.unit

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def entry(key: str, vid: str = "null", *, marker: bool = False, status: str = "") -> VersionEntry:
    return VersionEntry(
        key, vid, False, marker, 0 if marker else 1, "etag", T0, replication_status=status
    )


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


def test_missing_rules_file_is_invalid_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.json"
    assert run(["replication", "put", "s3://src", "--file", str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"InvalidArgument: cannot read {missing}: No such file or directory\n"
    )


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
    markers = [entry("m", "v1", marker=True, status=COMPLETED), entry("n", marker=True)]
    entries = [entry(k) for k in statuses] + markers

    def status_of(e: VersionEntry) -> str:  # a HEAD: it cannot read a marker
        assert not e.delete_marker, "a delete marker was HEADed"
        return statuses[e.key]

    count = rep.count_statuses(entries, status_of, limit=100)
    assert count.counts == {PENDING: 1, COMPLETED: 2, FAILED: 1, REPLICA: 1, "none": 1}
    # A marker's status is the one its listing entry carries.
    assert count.marker_counts == {PENDING: 0, COMPLETED: 1, FAILED: 0, REPLICA: 0, "none": 1}
    assert (count.versions, count.delete_markers, count.gone, count.truncated) == (6, 2, 0, False)
    assert rep.status_notes(count, 100) == []


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


class _Heads:
    """A client whose HEAD of an SSE-C version is refused for want of its key,
    as the node refuses it (tristore.sse.check_customer_key)."""

    def head_object(self, bucket: str, key: str, version_id: str | None = None) -> object:
        if key == "sealed":
            raise SSECustomerKeyRequired("no key given")  # the class tells, not the words
        if key == "other":
            raise InvalidRequest("something else is wrong")
        if key == "says-sse-c":
            # Another refusal whose message names SSE-C (the node's own words
            # for a key given to an object that is not SSE-C).
            raise InvalidRequest(
                f"{bucket}/{key} is not encrypted with a customer-provided key; "
                "the request must not give SSE-C parameters"
            )
        raise AssertionError(key)


def test_a_status_count_takes_an_sse_c_versions_status_from_its_listing() -> None:
    """Counting needs no SSE-C key: the version listing carries the status."""
    status_of = rep._version_status(_Heads(), "b")  # type: ignore[arg-type]
    assert status_of(entry("sealed", "v1", status=COMPLETED)) == COMPLETED
    for key in ("other", "says-sse-c"):  # another refusal is not swallowed
        with pytest.raises(InvalidRequest):
            status_of(entry(key, "v2", status=COMPLETED))


class _HeadsAndListing(_Heads):
    """:class:`_Heads` as the CLI connects to it, with a version listing."""

    def __enter__(self) -> _HeadsAndListing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def iter_object_versions(self, bucket: str, prefix: str = "") -> Iterator[VersionPage]:
        e = entry(prefix, "v1", status=COMPLETED)
        e = replace(e, is_latest=True, replication_targets={"west/b": COMPLETED})
        yield VersionPage([e], [], False, None, None)


def test_status_of_an_sse_c_version_comes_from_its_listing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``replication status s3://B/K`` of an SSE-C version (whose HEAD needs a
    key) reads the listing; another InvalidRequest that mentions SSE-C is an
    error, not an SSE-C version."""
    monkeypatch.setattr(rep, "connect", lambda endpoint: _HeadsAndListing())
    assert run(["replication", "status", "s3://bkt/sealed"]) == 0
    assert capsys.readouterr().out.split() == [COMPLETED, "west/b", COMPLETED]
    assert run(["replication", "status", "s3://bkt/says-sse-c"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("InvalidRequest: bkt/says-sse-c is not encrypted"), err


def test_count_statuses_limit_must_be_positive() -> None:
    with pytest.raises(InvalidArgument, match="--limit"):
        rep.count_statuses([], lambda e: "", limit=0)


def test_status_count_table_and_json() -> None:
    entries = [entry("a"), entry("m", marker=True, status=FAILED)]
    count = rep.count_statuses(entries, lambda e: PENDING, limit=10)
    lines = rep.format_status_count(count).splitlines()
    assert lines[0].split() == ["STATUS", "VERSIONS", "DELETE", "MARKERS"]
    assert [ln.split() for ln in lines[1:]] == [
        ["PENDING", "1", "0"],
        ["COMPLETED", "0", "0"],
        ["FAILED", "0", "1"],
        ["REPLICA", "0", "0"],
        ["none", "0", "0"],
    ]
    assert count.to_json() == {
        "counts": {"PENDING": 1, "COMPLETED": 0, "FAILED": 0, "REPLICA": 0, "none": 0},
        "versions": 1,
        "delete_marker_counts": {
            "PENDING": 0,
            "COMPLETED": 0,
            "FAILED": 1,
            "REPLICA": 0,
            "none": 0,
        },
        "delete_markers": 1,
        "gone": 0,
        "truncated": False,
    }
    # A status only markers have still gets a row.
    odd = rep.count_statuses([entry("m", marker=True, status="LATER")], lambda e: "", limit=10)
    assert rep.format_status_count(odd).splitlines()[-1].split() == ["LATER", "0", "1"]


# --- backfill, verify and the dead-letter queue ----------------------------------------

TO_WEST = Rule("all", (Destination("west", "dst"),))


def version(
    key: str,
    vid: str = "v1",
    *,
    etag: str = "e1",
    marker: bool = False,
    status: str = "",
    targets: dict[str, str] | None = None,
) -> VersionEntry:
    return VersionEntry(
        key, vid, False, marker, 0 if marker else 1, "" if marker else etag, T0,
        replication_status=status, replication_targets=targets or {},
    )  # fmt: skip


def no_tags(e: VersionEntry) -> dict[str, str]:
    raise AssertionError(f"tags of {e.key} read though no rule filters on tags")


def test_split_status() -> None:
    assert rep.split_status("FAILED: InvalidRequest: not versioned") == (
        FAILED,
        "InvalidRequest: not versioned",
    )
    assert rep.split_status(COMPLETED) == (COMPLETED, "")
    assert rep.split_status("") == ("", "")


def test_backfill_plans_each_kind_of_entry() -> None:
    rules = [Rule("logs", (Destination("west", "dst"), Destination("south", "dst")), prefix="l/")]
    entries = [
        version("l/new"),
        version("l/half", targets={"west/dst": COMPLETED}),
        version("l/failed", targets={"west/dst": "FAILED: no", "south/dst": PENDING}),
        version("other"),
        version("l/marker", marker=True),  # the rule does not send markers
        version("l/replica", status=REPLICA),
    ]
    plans = list(rep.plan_backfill(entries, rules, no_tags))
    assert [p.outcome for p in plans] == [
        rep.MATCH, rep.MATCH, rep.MATCH, rep.NO_MATCH, rep.NO_MATCH, rep.SKIP_REPLICA,
    ]  # fmt: skip
    assert [p.queue for p in plans[:3]] == [("south/dst", "west/dst"), ("south/dst",), ()]
    assert plans[1].present == {"west/dst": COMPLETED}
    count = rep.BackfillCount()
    for p in plans:
        count.add(p)
    # add() leaves ``queued`` and ``errors`` to the caller, who makes the requeues.
    assert count.to_json() == {
        "versions": 6, "queued": 0, "already": 2, "failed": 1, "not_matching": 2,
        "replicas": 1, "delete_markers": 1, "gone": 0, "errors": 0,
    }  # fmt: skip
    assert ("failed (see dlq list)", 1) in count.rows()
    assert ("sent nowhere by the rules", 2) in count.rows()
    assert count.rows(dry_run=True)[1] == ("to queue (dry run)", 0)


def test_backfill_queues_delete_markers_where_a_rule_sends_them() -> None:
    rules = [
        Rule("markers", (Destination("west", "dst"),), prefix="m/", delete_markers=True),
        Rule("versions", (Destination("south", "dst"),)),
        # Markers are never tag-filtered: their tags are not read.
        Rule("tagged", (Destination("north", "dst"),), tags={"a": "b"}, delete_markers=True),
    ]
    entries = [
        version("m/new", marker=True),
        version("m/queued", marker=True, targets={"west/dst": PENDING}),
        version("m/sent", marker=True, targets={"west/dst": COMPLETED}),
        version("m/failed", marker=True, targets={"west/dst": "FAILED: x"}),
        version("x/nowhere", marker=True),
        version("m/replica", marker=True, status=REPLICA),
    ]
    plans = list(rep.plan_backfill(entries, rules, no_tags))
    assert [p.outcome for p in plans] == [
        rep.MATCH, rep.MATCH, rep.MATCH, rep.MATCH, rep.NO_MATCH, rep.SKIP_REPLICA,
    ]  # fmt: skip
    assert [p.queue for p in plans[:4]] == [("west/dst",), (), (), ()]
    count = rep.BackfillCount()
    for p in plans:
        count.add(p)
    assert (count.versions, count.delete_markers, count.already, count.failed) == (6, 6, 2, 1)
    assert (count.not_matching, count.replicas) == (1, 1)


def test_backfill_dry_run_lines_name_delete_markers(capsys: pytest.CaptureFixture[str]) -> None:
    rules = [Rule("all", (Destination("west", "dst"),), delete_markers=True)]
    count, errors = rep.BackfillCount(), rep._Errors()
    for e in (version("k", "v2", marker=True), version("k", "v1")):
        rep._count_requeues("src", rep.plan_version(e, rules, no_tags), [], True, count, errors)
    assert capsys.readouterr().out.splitlines() == [
        "would queue: s3://src/k (delete marker v2) to west/dst",
        "would queue: s3://src/k (version v1) to west/dst",
    ]
    assert count.queued == 2


def test_backfill_reads_tags_only_where_a_tag_rule_could_match() -> None:
    rules = [
        Rule("tagged", (Destination("west", "t"),), prefix="t/", tags={"copy": "yes"}),
        Rule("off", (Destination("west", "x"),), enabled=False, tags={"x": "1"}),
        TO_WEST,
    ]
    tags = {"t/yes": {"copy": "yes"}, "t/no": {"copy": "no"}, "t/gone": None}
    asked: list[str] = []

    def tags_of(e: VersionEntry) -> dict[str, str] | None:
        asked.append(e.key)
        return tags[e.key]

    plans = {
        e.key: rep.plan_version(e, rules, tags_of)
        for e in [version(k) for k in ("t/yes", "t/no", "t/gone", "plain")]
    }
    assert asked == ["t/yes", "t/no", "t/gone"]  # not for "plain": no tag rule's prefix
    assert plans["t/yes"].queue == ("west/dst", "west/t")
    assert plans["t/no"].queue == ("west/dst",)
    assert plans["t/gone"].outcome == rep.GONE
    assert plans["plain"].queue == ("west/dst",)


def test_backfill_plan_is_lazy() -> None:
    read: list[str] = []

    def entries() -> Iterator[VersionEntry]:
        for k in "abc":
            read.append(k)
            yield version(k)

    plans = rep.plan_backfill(entries(), [TO_WEST], no_tags)
    assert next(plans).entry.key == "a" and read == ["a"]


def test_count_bar_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    count = rep.BackfillCount(versions=1200, queued=300)
    assert rep.render_count(count, 2.0) == "1200 versions  300 queued  600/s"
    assert rep.render_count(count, 0.0).endswith("-/s")
    now = [0.0]
    out = io.StringIO()
    bar = rep.CountProgress(count, out, clock=lambda: now[0])
    now[0] = 2.0
    bar(count.versions)
    bar.close()
    assert (
        out.getvalue() == "\r1200 versions  300 queued  600/s\r1200 versions  300 queued  600/s\n"
    )
    # Not a terminal: no bar at all.
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not isinstance(rep.count_bar(count), rep.CountProgress)


def _ok(dest: str = "west/dst") -> dict[str, str]:
    return {dest: COMPLETED}


@pytest.mark.parametrize(
    ("source", "held", "kind", "detail"),
    [
        (version("k", targets=_ok()), version("k", status=REPLICA), None, ""),
        (version("k"), version("k"), None, ""),  # sent some other way: the data is there
        (version("k"), None, rep.MISSING, "never queued: tristore replication backfill"),
        (version("k", targets=_ok()), None, rep.MISSING, "COMPLETED at the source"),
        (version("k", marker=True), None, rep.MISSING, "never queued: tristore replication"),
        (version("k", targets={"west/dst": PENDING}), None, rep.STILL_PENDING, ""),
        # Arrived, but the source has not heard yet.
        (version("k", targets={"west/dst": PENDING}), version("k"), rep.STILL_PENDING, ""),
        (version("k", targets={"west/dst": "FAILED: InvalidRequest: x"}), None, rep.HAS_FAILED,
         "InvalidRequest: x"),
        (version("k", targets={"west/dst": FAILED}), None, rep.HAS_FAILED, "no error recorded"),
        (version("k", targets=_ok()), version("k", etag="e2"), rep.DIFFERENT,
         "etag e1 at the source, e2 at the destination"),
        (version("k", marker=True, targets=_ok()), version("k"), rep.DIFFERENT,
         "a delete marker at the source, a version at the destination"),
        (version("k", targets=_ok()), version("k", marker=True), rep.DIFFERENT,
         "a version at the source, a delete marker at the destination"),
        (version("k", marker=True, targets=_ok()), version("k", marker=True), None, ""),
    ],
)  # fmt: skip
def test_compare(
    source: VersionEntry, held: VersionEntry | None, kind: str | None, detail: str
) -> None:
    diff = rep.compare(source, "west/dst", held)
    if kind is None:
        assert diff is None
        return
    assert diff is not None
    assert (diff.kind, diff.key, diff.version_id, diff.destination) == (kind, "k", "v1", "west/dst")
    assert detail in diff.detail


def test_diff_merges_listings_key_by_key() -> None:
    rules = [
        Rule("logs", (Destination("west", "dst"),), prefix="l/", delete_markers=True),
        Rule("all", (Destination("south", "dst"),)),
        Rule("off", (Destination("north", "dst"),), enabled=False),
    ]
    both = {"west/dst": COMPLETED, "south/dst": COMPLETED}
    source = [
        version("a", "v2", targets={"south/dst": COMPLETED}),
        version("a", "v1", targets={"south/dst": COMPLETED}),
        version("l/1", "v3", marker=True, targets=both),
        version("l/1", "v1", targets=both),
        version("l/2", "v1", targets={"west/dst": PENDING, "south/dst": COMPLETED}),
        version("l/3", "v9", status=REPLICA),
        version("z", "v1"),
    ]
    west = [  # extra keys and versions the destination holds do not matter
        version("0-only-west"),
        version("l/1", "v3", marker=True),
        version("l/1", "v1", etag="other"),
        version("l/1", "v0"),
        version("l/2", "v1"),
        version("l/4"),
    ]
    south = [version("a", "v2"), version("a", "v1"), version("l/1", "v3", marker=True),
             version("l/1", "v1"), version("l/2", "v1")]  # fmt: skip
    count = rep.VerifyCount()
    diffs = list(
        rep.diff_versions(source, {"west/dst": west, "south/dst": south}, rules, no_tags, count)
    )
    assert [(d.kind, d.key, d.version_id, d.destination) for d in diffs] == [
        (rep.DIFFERENT, "l/1", "v1", "west/dst"),
        (rep.STILL_PENDING, "l/2", "v1", "west/dst"),
        (rep.MISSING, "z", "v1", "south/dst"),
    ]
    # The marker goes to west only (its rule sends markers): south is not checked for it.
    assert (count.versions, count.checked, count.replicas, count.not_replicated) == (7, 8, 1, 0)
    assert count.counts == {"missing": 1, "different": 1, "pending": 1, "failed": 0}
    assert count.total == 3
    summary = rep.verify_summary(count, ["south/dst", "west/dst"])
    assert summary.startswith("3 differences (1 missing, 1 different, 1 pending, 0 failed) in 8 ")
    assert rep.verify_summary(rep.VerifyCount(versions=1), ["west/dst"]).startswith(
        "no differences: 0 checks against west/dst; 1 source version listed"
    )


def test_diff_reads_the_destination_lazily_and_refuses_unordered_listings() -> None:
    read: list[str] = []

    def west() -> Iterator[VersionEntry]:
        for k in ("a", "b", "c", "d"):
            read.append(k)
            yield version(k)

    source = [version("b", etag="x"), version("a")]
    diffs = rep.diff_versions(source, {"west/dst": west()}, [TO_WEST], no_tags)
    assert next(diffs).kind == rep.DIFFERENT
    assert read == ["a", "b", "c"]  # up to the first key past "b", no further
    with pytest.raises(CliError, match="came after"):
        next(diffs)


def test_difference_line_and_json() -> None:
    d = rep.Difference(rep.HAS_FAILED, "a b", "v1", "west/dst", detail="InvalidRequest: x")
    assert d.line() == "failed     west/dst  v1  a b  (InvalidRequest: x)"
    assert rep.Difference(rep.MISSING, "k", "v1", "w/d", True).line() == (
        "missing    w/d  v1  k (delete marker)"
    )
    assert d.to_json() == {
        "kind": "failed", "key": "a b", "version_id": "v1", "destination": "west/dst",
        "delete_marker": False, "detail": "InvalidRequest: x",
    }  # fmt: skip


def test_destination_endpoints() -> None:
    given = rep.parse_to_endpoints(["west=127.0.0.1:1,127.0.0.1:2", "south=h:3"])
    assert given == {"west": "127.0.0.1:1,127.0.0.1:2", "south": "h:3"}
    assert rep.endpoints_for(["west/a", "west/b"], given) == {"west": "127.0.0.1:1,127.0.0.1:2"}
    with pytest.raises(InvalidArgument, match="--to-endpoint north=HOST:PORT") as info:
        rep.endpoints_for(["north/a", "west/a"], given)
    assert "cluster(s) north," in info.value.message
    assert rep.enabled_destinations([TO_WEST, RULE, Rule("x", (Destination("n", "d"),),
                                     enabled=False)]) == ["east/dst", "west/dst"]  # fmt: skip


def test_failed_targets() -> None:
    entries = [
        version("a", "v1", targets={"west/dst": "FAILED: NoSuchBucket: gone", "south/d": FAILED}),
        version("a", "v2", targets={"west/dst": COMPLETED}),
        version("b", "v1", marker=True, targets={"west/dst": "FAILED: x"}),
        version("c", "v1", targets={"west/dst": PENDING}),
    ]
    every = list(rep.failed_targets(entries))
    assert every == [
        rep.FailedTarget("a", "v1", "south/d", ""),
        rep.FailedTarget("a", "v1", "west/dst", "NoSuchBucket: gone"),
        rep.FailedTarget("b", "v1", "west/dst", "x", delete_marker=True),
    ]
    assert [t.key for t in rep.failed_targets(entries, key="b")] == ["b"]
    assert list(rep.failed_targets(entries, key="a", version_id="v2")) == []
    assert [t.destination for t in rep.failed_targets(entries, destination="south/d")] == [
        "south/d"
    ]
    header, *rows = rep.format_failed(every).splitlines()
    assert header.split() == ["KEY", "VERSION", "DESTINATION", "ERROR"]
    assert rows[0].split() == ["a", "v1", "south/d", "-"]
    assert rows[2].split()[:3] == ["b", "(delete", "marker)"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "s3://src/k"], "object URL"),
        (["verify", "s3://src", "--to-endpoint", "west"], "NAME=VALUE"),
        (["verify", "s3://src", "--to-endpoint", "west="], "names no HOST:PORT"),
        (["verify", "s3://src", "--to-endpoint", "w=h:1", "--to-endpoint", "w=h:2"], "twice"),
        (["dlq", "list", "nope"], "s3://BUCKET[/KEY]"),
        (["dlq", "replay", "s3://src", "--version-id", "v"], "--version-id: only with --key"),
        (["dlq", "replay", "s3://src", "--key", "k", "--prefix", "p"], "give one of them"),
        (["dlq", "replay", "s3://src", "--destination", "west"], "--destination 'west' must"),
    ],
)
def test_new_commands_refuse_bad_flags_before_connecting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRISTORE_ENDPOINT", raising=False)
    assert run(["replication", *argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert "TRISTORE_ENDPOINT" not in err


def test_new_commands_parse() -> None:
    args = parse("replication", "dlq", "replay", "s3://b", "--key", "k", "--version-id", "v")
    assert args.func is rep.cmd_dlq_replay and (args.key, args.version_id) == ("k", "v")
    args = parse("replication", "verify", "s3://b", "--to-endpoint", "w=h:1", "--json")
    assert args.func is rep.cmd_verify and args.to_endpoint == ["w=h:1"]
    args = parse("replication", "backfill", "s3://b", "--prefix", "p/", "--dry-run")
    assert args.func is rep.cmd_backfill and args.dry_run and not args.no_progress
    with pytest.raises(SystemExit):
        parse("replication", "dlq")


def test_in_order_keeps_order_and_reads_no_further_than_the_window() -> None:
    from concurrent.futures import ThreadPoolExecutor

    read: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10):
            read.append(i)
            yield i

    def slow_first(i: int) -> int:
        if i == 0:
            time.sleep(0.05)  # finishes last: still yielded first
        return i * 10

    with ThreadPoolExecutor(3) as pool:
        results = rep.in_order(pool, slow_first, items(), window=3)
        assert next(results) == 0
        assert read == [0, 1, 2]
        assert list(results) == [i * 10 for i in range(1, 10)]
