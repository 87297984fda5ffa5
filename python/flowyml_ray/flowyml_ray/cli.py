"""``python -m flowyml_ray run ...``."""

from __future__ import annotations

import argparse
import json
import sys

from .cache import CacheError
from .driver import RunFailed, UsageError, run_pipeline
from .plan import PlanError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flowyml_ray",
        description="Run a flowyml pipeline on a Ray cluster, sharing its cache.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a registered pipeline of a program on Ray")
    run.add_argument("--binary", required=True, help="the program (a flowyml CLI)")
    run.add_argument("--pipeline", required=True, help="the registered pipeline's name")
    run.add_argument("--address", help="the cluster, HOST:PORT (default: Ray's own choice)")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a run-time input as JSON, or NAME=@FILE",
    )
    run.add_argument(
        "--input-str",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="a string input, as it is",
    )
    run.add_argument("--cache-dir", default=".flowyml", help="the cache, on the driver's node")
    run.add_argument(
        "--gpu-resource",
        metavar="NAME",
        help="the custom resource a GPU step asks for (default: num_gpus=1)",
    )
    run.add_argument("--retries", type=int, default=0, help="retries of a failed step")
    run.add_argument("--report", metavar="FILE", help="also write the report here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        report = run_pipeline(
            args.binary,
            args.pipeline,
            address=args.address,
            inputs=args.input,
            input_strs=args.input_str,
            cache_dir=args.cache_dir,
            gpu_resource=args.gpu_resource,
            retries=args.retries,
        )
        code = 0
    except (UsageError, PlanError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"error: {e}", file=sys.stderr)
        report = e.report
        code = 1
    except CacheError as e:
        print(f"error: the cache: {e}", file=sys.stderr)
        return 1
    text = json.dumps(report)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    print(text)
    return code
