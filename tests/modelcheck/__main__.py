"""``python -m tests.modelcheck [--long]``: explore the protocol model and print
what was explored, or the shortest trace to a violation."""

from __future__ import annotations

import sys

from tests.modelcheck.checker import CI, LONG, bounds_from_env, explore


def main(argv: list[str]) -> int:
    bounds = LONG if "--long" in argv else (CI if "--ci" in argv else bounds_from_env())
    res = explore(bounds)
    print(res.summary())
    if res.violation:
        print(res.format_trace())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
