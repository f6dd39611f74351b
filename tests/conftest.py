from __future__ import annotations

import pytest

#: Files that take a test worker minutes each (fault runs whose histories are
#: checked, the README tour), measured with ``--durations``. They are
#: collected first: ``make test`` hands whole files to two workers in
#: collection order, and a long file taken last keeps one worker busy while
#: the other has nothing left to do.
LONG_FILES = (
    "tests/robustness/test_linearizable.py",
    "tests/robustness/test_conditional.py",
    "tests/integration/test_replication_cli.py",
    "tests/integration/test_readme_tour.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.partition("::")[0]
        return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the order within a file, and of the rest, stays
