from __future__ import annotations

import compileall
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: speed is measured by the benchmarks in bench/, never
# by a test, and on a loaded machine (CI, helpers beside `make test`) examples
# of the history checkers took over Hypothesis's default 200 ms and failed.
settings.register_profile("tristore", deadline=None)
settings.load_profile("tristore")

#: The files that take a test worker longest (minutes for the fault runs
#: whose histories are checked), longest first, as ``--durations`` measured
#: them (process tier, two workers). They are collected first: ``make test``
#: hands whole files to two workers in collection order
#: (``--no-loadscope-reorder``), and a long file taken last keeps one worker
#: busy while the other has nothing left to do. The rest follow in their
#: usual order; each takes about a minute or less.
LONG_FILES = (
    "tests/robustness/test_linearizable.py",
    "tests/soak/test_soak.py",
    "tests/robustness/test_partitions.py",
    "tests/integration/test_replication_cli.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_events.py",
    "tests/integration/test_admin_repair.py",
    "tests/robustness/test_conditional.py",
    "tests/robustness/test_power_loss.py",
    "tests/integration/test_admin_map.py",
    "tests/integration/test_readme_tour.py",
    "tests/integration/test_cli_launcher.py",
    "tests/integration/test_witness.py",
    "tests/integration/test_disk_full.py",
    "tests/integration/test_encryption.py",
    "tests/integration/test_versioning.py",
)


#: The tiers ``make test`` runs (pyproject's markers): every test is in one.
TIERS = ("unit", "integration", "e2e", "robustness", "soak")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test in no tier would run in whichever run selects "not unit" (or in
    # none): a file that forgot its pytestmark is refused at collection.
    untiered = sorted(
        {
            i.nodeid.partition("::")[0]
            for i in items
            if not any(i.get_closest_marker(t) for t in TIERS)
        }
    )
    if untiered:
        raise pytest.UsageError(
            f"tests in no tier ({', '.join(TIERS)}): {', '.join(untiered)}; "
            "give the file a pytestmark"
        )

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.partition("::")[0]
        return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the order within a file, and of the rest, stays


#: The packages every process a test starts imports (the Makefile's BYTECODE).
COMPILED = ("tristore", "node", "witness", "replicator")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Bytecode for the project's own modules, as ``make test`` writes it
    first: where the environment sets PYTHONDONTWRITEBYTECODE, a pytest run
    started by hand (or by a helper) had none, and each of the hundreds of
    processes the integration tests start (nodes, CLI calls) compiled
    tristore/ and node/ from source again (``dev up`` took 6.9 s instead
    of 3.8 s, test_admin_repair.py 26.5 s instead of 22.6 s). Incremental
    (0.1 s when nothing changed); once, by the xdist controller."""
    if hasattr(session.config, "workerinput"):
        return
    root = Path(__file__).resolve().parents[1]
    for package in COMPILED:
        try:
            compileall.compile_dir(root / package, quiet=1, workers=0)
        except OSError:  # a read-only checkout: slower processes, the same tests
            return
