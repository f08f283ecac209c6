"""Run every benchmark in turn: `python -m bench [put|copy|queue ...]`.

Each benchmark starts its own SeaweedFS, runs our code and the baseline
(`s5cmd cp`) against it in the same process run, and writes its figures to
bench/results/<name>.md. They are serialised with a file lock because the
machine has two cores: figures taken while another benchmark runs are noise.
"""

from __future__ import annotations

import fcntl
import importlib
import inspect
import sys

BENCHMARKS = [
    "put",
    "copy",
    "queue",
    "slices",
    "submit",
    "verify",
    "operator",
    "cost",
    "small_put",
    "finalize",
    "fleet",
]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {BENCHMARKS}")
        return 2
    with open("/tmp/genblaze-bench.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in names:
            module = importlib.import_module(f"bench.bench_{name}")
            print(f"== bench {name}")
            main_fn = module.main
            rc = main_fn([]) if inspect.signature(main_fn).parameters else main_fn()
            if rc:
                return int(rc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
