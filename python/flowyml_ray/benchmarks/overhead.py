"""Per-task overhead of a distributed run against a local run of the same
pipeline (``chain50``, ``fanout50`` of ``examples/distributed.rs``).

    python benchmarks/overhead.py --binary target/debug/examples/distributed \\
        --address 127.0.0.2:6379 --pipeline chain50 --repeats 7

The first distributed run on a freshly started cluster is the cold one (new
worker processes, the binary shipped to each node); the others are warm. Every
run starts from an empty cache, so every step runs (as a task, or locally),
and local and distributed runs alternate. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from flowyml_ray.driver import connect, run_pipeline


def local(binary: str, pipeline: str, cache: Path, workers: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [binary, "-q", "run", pipeline, "--input", "seed=1", "--cache-dir", str(cache)]
        + ["--workers", str(workers)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def distributed(binary: str, pipeline: str, cache: Path, address: str) -> tuple[float, int]:
    started = time.perf_counter()
    report = run_pipeline(
        binary, pipeline, address=address, inputs=["seed=1"], cache_dir=str(cache)
    )
    return time.perf_counter() - started, report["tasks"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--address", required=True)
    p.add_argument("--pipeline", required=True)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--workers", type=int, default=2, help="local workers: the cluster's CPUs")
    args = p.parse_args()
    connect(args.address)
    tmp = Path(tempfile.mkdtemp(prefix="flowyml-overhead-"))
    runs = iter(range(10**6))

    def fresh() -> Path:
        return tmp / f"cache-{next(runs)}"

    cold, tasks = distributed(args.binary, args.pipeline, fresh(), args.address)
    cold_local = local(args.binary, args.pipeline, fresh(), args.workers)
    warm, base = [], []
    for _ in range(args.repeats):
        base.append(local(args.binary, args.pipeline, fresh(), args.workers))
        warm.append(distributed(args.binary, args.pipeline, fresh(), args.address)[0])
    per_task = sorted((d - b) / tasks * 1e3 for d, b in zip(warm, base))
    print(
        json.dumps(
            {
                "pipeline": args.pipeline,
                "tasks": tasks,
                "repeats": args.repeats,
                "local_s": {"median": statistics.median(base), "min": min(base), "max": max(base)},
                "distributed_warm_s": {
                    "median": statistics.median(warm),
                    "min": min(warm),
                    "max": max(warm),
                },
                "warm_overhead_ms_per_task": {
                    "median": statistics.median(per_task),
                    "min": per_task[0],
                    "max": per_task[-1],
                },
                "cold_s": cold,
                "cold_overhead_ms_per_task": (cold - cold_local) / tasks * 1e3,
            }
        )
    )


if __name__ == "__main__":
    main()
