"""`make up` then the README tour, run as a new user would, works from a fresh clone.

The test clones the repository (what CI and a new user get: committed files
only), runs ``make up`` in the clone (a new venv, a pip install, a six-node
cluster), then runs the ``sh`` block between ``<!-- tour -->`` and
``<!-- /tour -->`` in README.md with ``bash -euo pipefail``: every line must
succeed, and the output must show what the README says it shows.

While working on uncommitted changes, ``TRISTORE_TOUR_SRC=1`` copies the
working tree instead of cloning it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.cluster import free_base_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: Set (to anything) to copy the working tree instead of cloning HEAD.
SRC_ENV = "TRISTORE_TOUR_SRC"
TOUR_START = "<!-- tour -->"
TOUR_END = "<!-- /tour -->"
DEV_DIR = ".tristore"
#: A fresh venv and a pip install; with pip's cache this takes well under a minute.
MAKE_UP_TIMEOUT_S = 600
TOUR_TIMEOUT_S = 300
#: What the working-tree copy leaves out: what .gitignore keeps out of a clone.
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    DEV_DIR,
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.log",
)
#: Files the tour creates and must remove again.
TOUR_FILES = ("hello.txt", "big.bin", "big.copy")
#: Output the README shows after the tour that is the same on every run. Each
#: must appear in README.md and in the tour's output.
EXPECTED = (
    "make_bucket: tour",
    "upload: hello.txt to s3://tour/hello.txt (16 bytes, etag 465e57b024a11be3eb82028535d513fa)",
    "PRE data/",
    '"key": "data/big.bin"',
    '"owner": "tour"',
    "hello, tristore",
    "download: s3://tour/data/big.bin to big.copy (5000000 bytes)",
    "['data/big.bin', 'from-boto3.txt', 'hello.txt']",
    "written with boto3",
    "delete: s3://tour/from-boto3.txt",
    "sent SIGKILL to a1",
    "upload: stdin to s3://tour/while-down.txt (26 bytes",
    "written while a1 was down",
    "nodes 5/6 up  hints pending 2",
    "AZs: az-a 1/2  az-b 2/2  az-c 2/2",
    "started a1",
    "data/big-while-down.bin",
    "delete: s3://tour/while-down.txt",
    "remove_bucket: tour",
    "processes; data kept in",
)
#: Variables a new user's shell does not have (a make running us passes its
#: own flags down; PYTHONPATH would load this checkout instead of the clone).
_NOT_INHERITED = {
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSAFEPATH",
    "VIRTUAL_ENV",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEOVERRIDES",
}


def tour_script(readme: str) -> str:
    """The commands of the README's tour: the one ``sh`` block between the markers."""
    assert readme.count(TOUR_START) == 1, f"README.md needs exactly one {TOUR_START}"
    assert readme.count(TOUR_END) == 1, f"README.md needs exactly one {TOUR_END}"
    start = readme.index(TOUR_START) + len(TOUR_START)
    end = readme.index(TOUR_END)
    assert start < end, f"{TOUR_START} must come before {TOUR_END}"
    section = readme[start:end].strip()
    assert section.startswith("```sh\n") and section.endswith("\n```"), (
        f"between {TOUR_START} and {TOUR_END} there must be exactly one ```sh block"
    )
    body = section[len("```sh\n") : -len("\n```")]
    assert "```" not in body, "the tour must be one fenced block"
    prompts = [line for line in body.splitlines() if line.lstrip().startswith("$ ")]
    assert not prompts, f"tour lines must be commands without a prompt: {prompts}"
    return body + "\n"


def _in_venv(path_entry: str) -> bool:
    return bool(path_entry) and (Path(path_entry).parent / "pyvenv.cfg").exists()


def user_env() -> dict[str, str]:
    """The environment of a new user's shell: ours, minus tristore settings,
    an activated venv and the flags of a make that runs this test."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRISTORE_") and k not in _NOT_INHERITED
    }
    path = env.get("PATH", "")
    kept = os.pathsep.join(p for p in path.split(os.pathsep) if p and not _in_venv(p))
    # Drop venvs from PATH only if the Makefile still finds a Python without them.
    if shutil.which("python3.11", path=kept) or shutil.which("python3", path=kept):
        env["PATH"] = kept
    return env


def checkout(dest: Path) -> None:
    """A fresh clone of HEAD, or (TRISTORE_TOUR_SRC set) a copy of the working tree."""
    if os.environ.get(SRC_ENV):
        shutil.copytree(REPO, dest, ignore=COPY_IGNORE, symlinks=True)
        return
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout; set {SRC_ENV}=1 to copy the working tree")
    subprocess.run(
        ["git", "clone", "--quiet", str(REPO), str(dest)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def explain(what: str, proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{what} exited {proc.returncode}\n"
        f"--- stdout (last 6000 chars):\n{proc.stdout[-6000:]}\n"
        f"--- stderr (last 6000 chars):\n{proc.stderr[-6000:]}"
    )


def node_status(clone: Path, env: dict[str, str]) -> list[dict[str, object]]:
    tristore = clone / ".venv" / "bin" / "tristore"
    proc = run([str(tristore), "dev", "status", "--dir", DEV_DIR, "--json"], clone, env, 60)
    assert proc.returncode == 0, explain("tristore dev status", proc)
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list)
    return rows


def test_readme_tour_is_one_runnable_block() -> None:
    readme = (REPO / "README.md").read_text()
    script = tour_script(readme)
    lines = [s for s in (line.strip() for line in script.splitlines()) if s]
    commands = [s for s in lines if not s.startswith("#")]
    assert commands[-1] == "make down", "the tour ends by stopping the cluster"
    missing = [s for s in EXPECTED if s not in readme]
    assert not missing, f"the README's tour output lacks {missing}"
    for name in TOUR_FILES:
        assert f" {name}" in script, f"the tour no longer uses {name}; update TOUR_FILES"


@pytest.mark.timeout(MAKE_UP_TIMEOUT_S + TOUR_TIMEOUT_S + 180)
def test_make_up_then_readme_tour(tmp_path: Path) -> None:
    clone = tmp_path / "tristore"
    checkout(clone)
    script = tmp_path / "tour.sh"
    script.write_text(tour_script((clone / "README.md").read_text()))
    env = user_env()
    base = free_base_port()
    try:
        up = run(
            ["make", "up", f"DEV_DIR={DEV_DIR}", f"UP_ARGS=--base-port {base}"],
            clone,
            env,
            MAKE_UP_TIMEOUT_S,
        )
        assert up.returncode == 0, explain("make up", up)
        assert f"export TRISTORE_ENDPOINT=127.0.0.1:{base + 1}," in up.stdout, up.stdout

        rows = node_status(clone, env)
        assert rows and all(r["up"] for r in rows), rows
        endpoint = ",".join(str(r["grpc"]) for r in rows if r["role"] == "node")
        tour_env = {
            **env,
            "PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "TRISTORE_ENDPOINT": endpoint,
        }
        tour = run(["bash", "-euo", "pipefail", str(script)], clone, tour_env, TOUR_TIMEOUT_S)
        assert tour.returncode == 0, explain("the README tour", tour)

        missing = [s for s in EXPECTED if s not in tour.stdout]
        assert not missing, f"the tour's output lacks {missing}\n{explain('the tour', tour)}"
        left = [name for name in TOUR_FILES if (clone / name).exists()]
        assert not left, f"the tour left {left} behind"
        # The tour's own `make down` stopped the cluster.
        still_up = [r["name"] for r in node_status(clone, env) if r["up"]]
        assert not still_up, f"still running after the tour's make down: {still_up}"
    finally:
        tristore = clone / ".venv" / "bin" / "tristore"
        if (clone / DEV_DIR / "launcher.json").exists() and tristore.exists():
            run([str(tristore), "dev", "down", "--dir", DEV_DIR], clone, env, 120)
