"""README.md and docs/ are documentation of the code; these tests fail when they drift apart.

What is checked, each against the code itself rather than a copy of it:

- every key of every ``[section]`` and ``[[list]]`` of ``tristore/config.py`` has a
  row in its table in docs/configuration.md, with the right default, and no row
  names a key that no longer exists; the example ``cluster.toml`` still loads;
- every metric that ``tristore.metrics``, ``node.metrics``, ``witness.metrics``
  and ``replicator.metrics`` define has a row in docs/metrics-and-health.md with
  its exposed name, type and labels, and every metric name that the README or
  a docs page mentions exists;
- every ``tristore`` command (``dev up``, ``serve``, ...) has a row in the
  table of docs/commands.md naming each of its flags (and, for ``serve``, each
  role), and the global options are documented there;
- the README opens with ``make up`` and ``make test``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

import node.metrics
import replicator.metrics
import tristore.metrics
import witness.metrics
from tristore import config
from tristore.cli.main import build_parser

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
#: The pages that hold the tables checked here.
CONFIGURATION = DOCS / "configuration.md"
METRICS = DOCS / "metrics-and-health.md"
COMMANDS = DOCS / "commands.md"
METRIC_MODULES = (tristore.metrics, node.metrics, witness.metrics, replicator.metrics)
#: Documented once, in the line above the Commands table, for every command.
GLOBAL_OPTIONS = {"--help", "--endpoint", "--ca-bundle", "--insecure"}

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_TICKED = re.compile(r"`([^`]+)`")


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


@pytest.fixture(scope="module")
def configuration() -> str:
    return CONFIGURATION.read_text()


@pytest.fixture(scope="module")
def metrics_page() -> str:
    return METRICS.read_text()


@pytest.fixture(scope="module")
def commands() -> str:
    return COMMANDS.read_text()


@pytest.fixture(scope="module")
def all_docs() -> str:
    """The README and every page of docs/, one after the other."""
    pages = [README, *sorted(DOCS.glob("*.md"))]
    return "\n".join(p.read_text() for p in pages)


# --- reading the docs -----------------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block, in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]


def without_code(text: str) -> str:
    """The prose and tables of a page, fenced code blocks removed."""
    return _FENCE.sub("", text)


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def table_rows(text: str) -> Iterator[list[str]]:
    """Cells of every table body row (header and separator rows left out)."""
    lines = without_code(text).splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        if i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: ") and "-" in lines[i + 1]:
            continue  # a header row
        yield cells(line)


def table_after(text: str, marker: str) -> list[list[str]]:
    """Body rows of the table under the heading line ``marker`` (alone on its
    line, or followed by a note in parentheses) in docs/configuration.md."""
    lines = without_code(text).splitlines()
    start = next(
        (i for i, ln in enumerate(lines) if ln == marker or ln.startswith(marker + " (")), None
    )
    assert start is not None, f"{CONFIGURATION.name} has no heading line {marker} before its table"
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append(cells(line))
        elif rows:
            break
    assert len(rows) >= 2, f"no table follows {marker} in {CONFIGURATION.name}"
    return rows[2:] if set(rows[1][0]) <= set("-: ") else rows[1:]


def first_ticked(cell: str) -> str | None:
    m = _TICKED.search(cell)
    return m.group(1) if m else None


# --- configuration --------------------------------------------------------------


def toml_value(v: Any) -> str:
    """A default as it is written in TOML (and in the docs' default column)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(v)


def config_tables() -> Iterator[tuple[str, type, bool]]:
    """(marker, dataclass, has a default column) for every section and list."""
    for name, cls in config.SECTIONS.items():
        yield f"`[{name}]`", cls, True
    for name, cls in config.LISTS.items():
        yield f"`[[{name}]]`", cls, False


@pytest.mark.parametrize(
    ("marker", "cls", "with_defaults"),
    list(config_tables()),
    ids=[m.strip("`") for m, _, _ in config_tables()],
)
def test_every_config_key_has_a_row_with_its_default(
    configuration: str, marker: str, cls: type, with_defaults: bool
) -> None:
    rows = {first_ticked(r[0]): r for r in table_after(configuration, marker)}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    page = CONFIGURATION.name
    missing = sorted(set(fields) - set(rows))
    assert not missing, f"{page}'s {marker} table lacks {missing}"
    stale = sorted(str(k) for k in set(rows) - set(fields))
    assert not stale, f"{page}'s {marker} table names keys that do not exist: {stale}"
    if not with_defaults:
        return
    wrong = {
        name: (first_ticked(rows[name][1]), toml_value(f.default))
        for name, f in fields.items()
        if first_ticked(rows[name][1]) != toml_value(f.default)
    }
    assert not wrong, f"{page}'s {marker} defaults differ (docs, code): {wrong}"


def test_the_example_cluster_toml_loads(configuration: str) -> None:
    examples = [body for lang, body in fenced_blocks(configuration) if lang == "toml"]
    assert examples, f"{CONFIGURATION.name} has no ```toml example"
    for body in examples:
        cfg = config.parse(tomllib.loads(body), env={})
        assert cfg.nodes and cfg.witnesses, "the example should show nodes and witnesses"


# --- metrics --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    type: str
    labels: tuple[str, ...]

    @property
    def exposed(self) -> set[str]:
        """Names the docs may give it: a counter is scraped as NAME_total."""
        return {self.name, f"{self.name}_total"} if self.type == "counter" else {self.name}


def defined_metrics() -> list[Metric]:
    out = []
    for module in METRIC_MODULES:
        for obj in vars(module).values():
            if isinstance(obj, MetricWrapperBase):
                desc = next(iter(obj.describe()))
                out.append(Metric(desc.name, desc.type, tuple(obj._labelnames)))
    return out


def test_metric_modules_define_metrics() -> None:
    assert len(defined_metrics()) >= 20, "metric discovery found too little; is it broken?"


def test_every_metric_has_a_row_with_its_type_and_labels(metrics_page: str) -> None:
    rows = {first_ticked(r[0]): r for r in table_rows(metrics_page) if len(r) >= 4}
    problems = []
    for m in defined_metrics():
        row = next((rows[n] for n in sorted(m.exposed) if n in rows), None)
        if row is None:
            problems.append(f"{m.name}: no row (as {' or '.join(sorted(m.exposed))})")
            continue
        if row[1] != m.type:
            problems.append(f"{m.name}: the docs say {row[1]!r}, the code {m.type!r}")
        labels = tuple(_TICKED.findall(row[2]))
        if sorted(labels) != sorted(m.labels):
            problems.append(f"{m.name}: the docs' labels {labels}, the code's {m.labels}")
    assert not problems, f"{METRICS.name}'s metric tables:\n" + "\n".join(problems)


def test_every_metric_the_docs_name_exists(all_docs: str) -> None:
    known = {n for m in defined_metrics() for n in m.exposed}
    named = set(re.findall(r"`(tristore_[a-z0-9_]+)`", all_docs))
    assert not named - known, f"the docs name metrics no module defines: {named - known}"


# --- commands -------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def leaf_commands() -> dict[str, argparse.ArgumentParser]:
    """Every runnable command path (``mb``, ``dev up``, ...) and its parser."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        subs = _subcommands(parser)
        if not subs:
            out[prefix] = parser
        for name, sub in subs.items():
            walk(f"{prefix} {name}".strip(), sub)

    walk("", build_parser())
    return out


def test_commands_are_discovered() -> None:
    commands = leaf_commands()
    assert {"mb", "dev up", "dev down", "serve", "admin status"} <= set(commands)


@pytest.mark.parametrize("path", sorted(leaf_commands()))
def test_every_command_has_a_row_naming_its_flags(commands: str, path: str) -> None:
    parser = leaf_commands()[path]
    words = path.split()
    rows = [
        " | ".join(r)
        for r in table_rows(commands)
        if (first_ticked(r[0]) or "").split()[: len(words)] == words
    ]
    assert rows, f"{COMMANDS.name}'s table has no row for `tristore {path}`"
    row = rows[0]
    missing = [
        opt
        for action in parser._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt not in GLOBAL_OPTIONS and f"`{opt}" not in row
    ]
    for action in parser._actions:
        if not action.option_strings and action.choices:
            missing += [
                f"{path} {choice}" for choice in action.choices if f"`{path} {choice}" not in row
            ]
    assert not missing, f"{COMMANDS.name}'s row for `{path}` does not mention {missing}"


def test_global_options_are_documented(commands: str) -> None:
    """Each in the usage line above the table (``[--opt ...]``), or ticked."""
    for opt in ("--endpoint", "--version", "--ca-bundle", "--insecure"):
        assert re.search(rf"(`|\[|`tristore ){re.escape(opt)}(?![\w-])", commands), opt


# --- the start ------------------------------------------------------------------


def test_readme_starts_with_make_up_and_make_test(readme: str) -> None:
    blocks = fenced_blocks(readme)
    assert blocks, "README.md has no code block"
    lang, body = blocks[0]
    commands = [line.split("#")[0].strip() for line in body.splitlines()]
    commands = [c for c in commands if c]
    assert lang == "sh", f"the first code block is {lang!r}, not sh"
    assert commands[:2] == ["make up", "make test"], (
        f"README.md's first code block must start with `make up` and `make test`, "
        f"not {commands[:2]}"
    )
