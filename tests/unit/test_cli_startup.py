"""The ``tristore`` command starts light: ``--help``, ``CMD --help`` and the
parser import no grpc, cryptography, SDK or generated protobuf modules, and the
table of commands main.py answers ``--help`` from says what the command modules
register. How fast it starts is measured by bench/cli_startup.py, not here."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tristore.cli import main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("grpc", "cryptography", "tristore.client", "tristore.pb", "asyncio")

# Prints the modules imported after running the CLI on argv (it exits 0 or 2).
PROBE = """
import json, sys
from tristore.cli import main
try:
    main.run(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)
"""


def _imported(*argv: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    modules: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return set(modules)


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("--version",),
        ("cp",),
        ("nosuch",),
        ("ls", "s3://bucket", "--max-keys", "x"),
        *((name, "--help") for name in main.COMMANDS),
    ],
)
def test_help_and_usage_errors_import_nothing_heavy(argv: tuple[str, ...]) -> None:
    assert _heavy(_imported(*argv)) == []


def test_top_level_help_imports_no_command_module() -> None:
    modules = _imported("--help")
    commands = {f"tristore.cli.{m}" for m in main.MODULES}
    assert sorted(modules & commands) == []
    assert "tristore.model" not in modules
    assert "importlib.metadata" not in modules


def test_command_help_imports_its_module_only() -> None:
    modules = _imported("ls", "--help")
    commands = {f"tristore.cli.{m}" for m in main.MODULES}
    assert "tristore.cli.objects" in modules
    assert "tristore.model" not in modules
    assert sorted(modules & commands - {"tristore.cli.objects"}) == []


def _choices(parser: object) -> list[tuple[str, str | None]]:
    sub = next(a for a in parser._actions if a.dest == "command")  # type: ignore[attr-defined]
    return [(c.dest, c.help) for c in sub._choices_actions]


def test_command_table_is_what_the_modules_register() -> None:
    assert _choices(main.build_parser()) == [(n, h) for n, (_, h) in main.COMMANDS.items()]
    for name, (module, _) in main.COMMANDS.items():
        sub = next(a for a in main.build_parser(name)._actions if a.dest == "command")
        assert sub.choices[name].add_help, f"{name} is registered by tristore.cli.{module}"


def _outcome(parse: object, argv: list[str]) -> tuple[str, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parse(argv)  # type: ignore[operator]
            result = repr(sorted((k, repr(v)) for k, v in vars(args).items()))
        except SystemExit as e:
            result = f"exit {e.code}"
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["nosuch"],
        ["ls", "--help"],
        ["cp"],
        ["--bogus", "ls", "s3://bucket"],
        ["--endpoint"],
        ["ls", "--endpoint"],
        ["--endpoint", "h:1", "ls", "s3://bucket/p", "--recursive", "--json"],
        ["--insecure", "cp", "a", "s3://bucket/k", "--parallel", "0"],
        ["admin", "--help"],
        ["admin", "status", "--json"],
        ["dev", "up", "--help"],
        ["replication", "put", "--help"],
        ["mpu", "ls", "s3://bucket"],
        ["policy", "get", "s3://bucket"],
        ["events", "tail", "--help"],
        ["sync", "--help"],
        ["serve", "--help"],
    ],
)
def test_lazy_parse_is_the_full_parse(argv: list[str]) -> None:
    assert _outcome(main.parse_args, argv) == _outcome(main.build_parser().parse_args, argv)
