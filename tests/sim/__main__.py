"""Run simulation seeds: ``python -m tests.sim --seed N -v`` replays one.

python -m tests.sim --seeds 1000            # seeds 0..999
python -m tests.sim --seed 17 -v            # one seed, its whole trace
python -m tests.sim --seeds 200 --mutant skip_witness
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.sim.run import MUTANTS, Params, run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, help="run this one seed")
    ap.add_argument("--seeds", type=int, default=100, help="run seeds FIRST..FIRST+N-1")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--ops", type=int, default=Params.ops_per_client, help="ops per client")
    ap.add_argument("--mutant", choices=sorted(MUTANTS), default="")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument(
        "--gentle", action="store_true", help="one crash at a time, no cut or slow links"
    )
    ap.add_argument("--tags", action="store_true", help="clients change tags too")
    ap.add_argument(
        "--edits",
        action="store_true",
        help="clients change the tags and ACLs of acknowledged versions too (versioned runs)",
    )
    ap.add_argument(
        "--version-deletes",
        action="store_true",
        help="clients DELETE acknowledged versions by id too (every run versioned)",
    )
    ap.add_argument(
        "--cond-deletes", action="store_true", help="half the DELETEs are conditional (If-Match)"
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print the trace")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first failure")
    args = ap.parse_args(argv)
    params = Params(
        ops_per_client=args.ops,
        faults=not args.no_faults,
        mutant=args.mutant,
        gentle=args.gentle,
        tags=args.tags,
        edits=args.edits,
        version_deletes=args.version_deletes,
        cond_deletes=args.cond_deletes,
    )
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    started = time.perf_counter()
    failed = 0
    n = 0
    for seed in seeds:
        n += 1
        r = run(seed, params)
        if args.verbose:
            print("\n".join(r.trace))
        status = "ok" if r.ok else "FAILED"
        print(
            f"seed {seed}: {status}  ops {r.ops}  faults {r.faults}  messages {r.messages}  "
            f"virtual {r.virtual_s:.1f}s  wall {r.wall_s:.2f}s  digest {r.digest}",
            flush=True,
        )
        if not r.ok:
            failed += 1
            for v in r.violations:
                print(f"  {v}")
            print(f"  replay: {r.replay_hint(params)}")
            if not args.keep_going:
                break
    took = time.perf_counter() - started
    print(f"{n} seeds, {failed} failed, {took:.1f}s ({took / max(n, 1):.3f}s a seed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
