"""The ``tristore`` command: argument parsing, dispatch and error reporting.

Exit status: 0 ok; 1 an error, reported as one ``Code: message`` line on stderr
(``NoSuchKey: ...``) and never as a traceback; 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from tristore.cli import (
    admin,
    auth,
    bulk_commands,
    dev,
    events,
    mpu,
    objects,
    replication,
    serve,
)
from tristore.cli.util import CliError
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

Exit status: 0 ok, 1 error (one 'Code: message' line on stderr), 2 usage."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tristore")
    except PackageNotFoundError:  # a checkout on PYTHONPATH
        return "0.1.0 (source)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="tristore: an S3-style object store. Object, admin and local-cluster commands.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    dev.register(sub, common)
    objects.register(sub, common)
    bulk_commands.register(sub, common)
    mpu.register(sub, common)
    replication.register(sub, common)
    auth.register(sub, common)
    events.register(sub, common)
    admin.register(sub, common)
    serve.register(sub, common)
    return parser


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


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The flags win over the environment; the SDK reads both from there.
    if getattr(args, "ca_bundle", None):
        os.environ[CA_BUNDLE_ENV] = args.ca_bundle
    if getattr(args, "client_insecure", False):
        os.environ[INSECURE_ENV] = "1"
    if args.func is not serve.cmd_serve:  # a served role handles SIGTERM itself
        signal.signal(signal.SIGTERM, _terminate)
    try:
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
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        return _report(type(e).__name__, f"{e.strerror or e}{where}")


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
