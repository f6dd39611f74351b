"""The ``tristore`` command: argument parsing, dispatch and error reporting.

Exit status: 0 ok; 1 an error, reported as one ``Code: message`` line on stderr
(``NoSuchKey: ...``) and never as a traceback; 2 a usage error (an argument the
parser refuses), reported the same way as ``InvalidArgument: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from tristore.cli.util import CliError, local_error, not_empty
from tristore.errors import TristoreError
from tristore.tls import CA_BUNDLE_ENV, INSECURE_ENV

PROG = "tristore"
EPILOG = """\
examples:
  eval "$(tristore dev up | grep ^export)"   # a 6-node cluster on 127.0.0.1
  # sets TRISTORE_ENDPOINT=127.0.0.1:7101,... and TRISTORE_CA_BUNDLE=.tristore/tls/ca.crt
  tristore mb s3://photos
  tristore cp cat.jpg s3://photos/2024/cat.jpg
  tristore ls s3://photos                    # one level; --recursive for every key
  tristore sync ./photos s3://photos/2024 --delete
  tristore admin status

Exit status: 0 ok, 1 error (one 'Code: message' line on stderr), 2 usage
(one 'InvalidArgument: message' line)."""

#: Exit status of an argument the parser refuses (DESIGN.md section 4: "2 usage").
USAGE_ERROR = 2


#: Every command, in the order ``--help`` lists them: the module of
#: ``tristore.cli`` whose ``register(sub, common)`` adds it, and its line in
#: ``--help``. Only the module of the command being run is imported (a command
#: module loads the model, and most load the SDK and grpc when they run): the
#: others stand in as stubs with the same help line, so ``tristore --help``
#: imports none. tests/unit/test_cli_startup.py checks this table against what
#: the modules register.
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("dev", "run a local cluster on loopback"),
    "mb": ("objects", "make a bucket"),
    "rb": ("objects", "remove a bucket (--force: with everything in it)"),
    "cp": ("objects", "copy a file to or from the store"),
    "cat": ("objects", "write an object to stdout"),
    "rm": ("objects", "delete an object, or (--recursive) every object under a prefix"),
    "stat": ("objects", "show an object's metadata"),
    "ls": ("objects", "list buckets, or objects under a prefix"),
    "version": ("objects", "turn bucket versioning on or off, or show it"),
    "encryption": ("objects", "set, show or remove a bucket's default encryption"),
    "tag": ("objects", "show, set or remove an object's or a bucket's tags"),
    "acl": ("objects", "show or set an object's canned ACL"),
    "presign": ("presign", "a URL that lets anyone GET (or PUT) one object for a while"),
    "sync": ("bulk_commands", "make a directory or prefix hold what another holds"),
    "mv": ("bulk_commands", "move a file or object (--recursive: a directory or prefix)"),
    "du": ("bulk_commands", "total size and object count under a prefix"),
    "mpu": ("mpu", "list, inspect and abort unfinished multipart uploads"),
    "replication": (
        "replication",
        "a bucket's replication rules, status, backfill, verify and dead-letter queue",
    ),
    "policy": ("auth", "bucket policies (S3's JSON form)"),
    "events": ("events", "object-created and object-removed events of a bucket"),
    "admin": ("admin", "cluster administration"),
    "serve": ("serve", "run one process (node, witness, replicator) in the foreground"),
}
MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tristore")
    except PackageNotFoundError:  # a checkout on PYTHONPATH
        return "0.1.0 (source)"


class _VersionAction(argparse._VersionAction):
    """``--version``, looking the version up only when asked: importlib.metadata
    costs ~40 ms a run."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        self.version = f"%(prog)s {_version()}"
        super().__call__(parser, *args, **kwargs)


class CliParser(argparse.ArgumentParser):
    """The parser of ``tristore`` and, as argparse gives a subparser its
    parent's class, of every command and subcommand.

    A usage error is one ``InvalidArgument: message`` line on stderr, like any
    other error, with exit status 2 (not argparse's usage block). A command
    with more than one positional, one of them taking a variable count (``tag
    URL [K=V ...]``, ``acl URL [CANNED]``), parses them intermixed with its
    options: plain argparse binds every positional at the first one, so an
    option between the URL and the rest left the rest unrecognized.
    """

    _intermixing = False
    #: The ``--help`` an error points to, when not this parser's own: a
    #: command's unrecognized arguments are found by the top-level parser.
    help_of: str | None = None

    def error(self, message: str) -> NoReturn:
        see = self.help_of or self.prog
        print(f"InvalidArgument: {_one_line(message)} (see '{see} --help')", file=sys.stderr)
        self.exit(USAGE_ERROR)

    def _intermixed(self) -> bool:
        positionals = self._get_positional_actions()
        nargs = [a.nargs for a in positionals]
        return (
            len(positionals) > 1
            and any(n in ("?", "*", "+") for n in nargs)
            and not any(n in (argparse.PARSER, argparse.REMAINDER) for n in nargs)
        )

    # One signature for typeshed's overloads (namespace None or given).
    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        if self._intermixing or not self._intermixed():
            parsed, extras = super().parse_known_args(args, namespace)
            command = getattr(parsed, "command", None)
            if self.prog == PROG and command in COMMANDS:
                self.help_of = f"{PROG} {command}"
            return parsed, extras
        # parse_known_intermixed_args calls parse_known_args (twice): those are plain.
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _register(module: str, sub: Any, common: argparse.ArgumentParser) -> None:
    importlib.import_module(f"tristore.cli.{module}").register(sub, common)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command (``command`` None), or of ``command`` alone
    with the others as stubs that only know their help line: the same
    ``--help`` and usage errors, without importing the other command modules.
    An unknown ``command`` gives stubs only, enough to parse the command name."""
    parser = CliParser(
        prog=PROG,
        description="tristore: an S3-style object store. Object, admin and local-cluster commands.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    endpoint_help = "HOST:PORT[,HOST:PORT...] of the cluster (default: $TRISTORE_ENDPOINT)"
    parser.add_argument("--endpoint", metavar="HOST:PORT[,...]", default=None, help=endpoint_help)
    # Also accepted after the command (`tristore ls --endpoint ...`); SUPPRESS keeps a
    # value given before the command from being overwritten by this default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint", metavar="HOST:PORT[,...]", default=argparse.SUPPRESS, help=endpoint_help
    )
    ca_help = f"PEM file of the cluster's CA, to verify the server (default: ${CA_BUNDLE_ENV})"
    insecure_help = f"plaintext, for a cluster run with [tls] insecure = true (or {INSECURE_ENV}=1)"
    for p, default in ((parser, None), (common, argparse.SUPPRESS)):
        p.add_argument("--ca-bundle", metavar="FILE", default=default, help=ca_help)
        p.add_argument(
            "--insecure",
            dest="client_insecure",
            action="store_true",
            default=default if default is argparse.SUPPRESS else False,
            help=insecure_help,
        )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = COMMANDS.get(command or "", ("", ""))[0]
    for module in MODULES:
        if command is None or module == wanted:
            _register(module, sub, common)
            continue
        for name, (owner, help_line) in COMMANDS.items():
            if owner == module:
                sub.add_parser(name, help=help_line, add_help=False)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` parsed as the full parser would, importing one command module:
    a parser of stubs finds the command (or answers ``--help``, ``--version``
    and a bad command name itself), then that command's parser parses it all."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = build_parser("").parse_known_args(args)[0].command
    return build_parser(command).parse_args(args)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _report(code: str, message: str) -> int:
    print(f"{code}: {_one_line(message)}", file=sys.stderr)
    return 1


def _silence_stdout() -> None:
    """After a broken pipe (``tristore cat ... | head``), stop Python from
    complaining again when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _terminate(signum: int, _frame: object) -> None:
    # Unwind like Ctrl-C does, so a download removes its temporary file.
    raise SystemExit(128 + signum)


def _tls_flags(args: argparse.Namespace) -> None:
    """``--ca-bundle`` and ``--insecure``: the flags win over the environment,
    and the SDK reads both from there."""
    ca = not_empty(getattr(args, "ca_bundle", None), "--ca-bundle", "a PEM file", CA_BUNDLE_ENV)
    if ca is not None:
        os.environ[CA_BUNDLE_ENV] = ca
    if getattr(args, "client_insecure", False):
        os.environ[INSECURE_ENV] = "1"


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command != "serve":  # a served role handles SIGTERM itself
        signal.signal(signal.SIGTERM, _terminate)
    try:
        _tls_flags(args)
        code: int = args.func(args)
        return code
    except TristoreError as e:
        return _report(e.code, e.message)
    except CliError as e:
        return _report(e.code, e.message)
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a local file no command named itself
        err = local_error(e)
        return _report(err.code, err.message)


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
