"""``python -m tests.modelcheck [--ci | --collect | --versions |
--versions-two-nodes | --replica-versions | --replica-versions-two-nodes |
--long]``: explore the protocol model (the unit tier's first bounds, its
deletes-and-collection bounds, its DELETEs of one version with AZs of one
node or two, its applies of a replica version with AZs of one node or two,
or the long ones; default: ``TRISTORE_LONG``) and print what was
explored, or the shortest trace to a violation."""

from __future__ import annotations

import sys

from tests.modelcheck.checker import (
    CI,
    CI_COLLECT,
    CI_REPLICA_VERSIONS,
    CI_REPLICA_VERSIONS_TWO_NODES,
    CI_VERSIONS,
    CI_VERSIONS_TWO_NODES,
    LONG,
    bounds_from_env,
    explore,
)


def main(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        return 0
    if "--long" in argv:
        bounds = LONG
    elif "--replica-versions-two-nodes" in argv:
        bounds = CI_REPLICA_VERSIONS_TWO_NODES
    elif "--replica-versions" in argv:
        bounds = CI_REPLICA_VERSIONS
    elif "--collect" in argv:
        bounds = CI_COLLECT
    elif "--versions-two-nodes" in argv:
        bounds = CI_VERSIONS_TWO_NODES
    elif "--versions" in argv:
        bounds = CI_VERSIONS
    else:
        bounds = CI if "--ci" in argv else bounds_from_env()
    res = explore(bounds)
    print(res.summary())
    if res.violation:
        print(res.format_trace())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
