"""Run flowyml pipelines on a Ray cluster.

The driver reads the pipeline's plan (``plan --json``), runs one Ray task per
group of steps (``run-step`` in a fresh process on some node), passes artifacts
as bytes in the cache's own encoding through Ray's object store, and keeps the
pipeline's cache on its own node through ``cache serve``, so that keys are only
ever computed by the pipeline's program: a distributed run and a local run share
cache entries.
"""

from .driver import RunFailed, run_pipeline

__all__ = ["RunFailed", "run_pipeline"]
__version__ = "0.1.0"
