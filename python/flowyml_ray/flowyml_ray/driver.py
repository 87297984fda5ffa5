"""The driver: a pipeline's groups as Ray tasks, its cache on the driver's node.

For each group whose inputs are known, the driver asks ``cache serve`` for the
keys of its steps (from the fingerprints of their inputs); a group whose every
step hits is not run: its outputs are fetched from the cache only when a task
that runs needs them. Any other group becomes one Ray task running
``run-step`` on some node, its inputs and outputs bytes in Ray's object store.
When a task ends, its manifest gives the fingerprints its dependents' keys are
computed from (so early cutoff works as in a local run), and its outputs are
verified and stored by ``cache serve``.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cache import CacheClient
from .plan import Group, Plan, parse_plan
from .task import gpu_env, node_binary, run_step

#: The version of the report's schema, that of ``run --json``.
REPORT_SCHEMA_VERSION = 1


class UsageError(ValueError):
    """Bad arguments or inputs: exit code 2."""


class RunFailed(RuntimeError):
    """A step failed: the run's report and what failed."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def _group_task(spec: dict, binary_box: list, *inputs: bytes):
    """One group on some node: the binary from the node's cache (or the
    object store), then ``run-step``."""
    import ray

    started = time.time()
    binary = node_binary(spec["binary_sha256"], lambda: ray.get(binary_box[0]))
    env = {**spec["env"], **gpu_env(ray.get_gpu_ids())}
    manifest, outputs = run_step(binary, spec, list(inputs), env)
    info = {
        "manifest": manifest,
        "node_id": ray.get_runtime_context().get_node_id(),
        "started": started,
        "finished": time.time(),
    }
    return (info, *outputs) if spec["outputs"] else info


def parse_inputs(values: list[str], strings: list[str], plan: Plan) -> dict[str, str]:
    """``--input NAME=JSON|NAME=@FILE`` and ``--input-str NAME=TEXT`` as JSON
    texts by name, checked against the plan's inputs."""
    given: dict[str, str] = {}
    for flag, items in (("--input", values), ("--input-str", strings)):
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise UsageError(f"`{flag} {item}`: write `{flag} NAME=VALUE`")
            if name not in plan.inputs:
                known = ", ".join(f"`{n}`" for n in plan.inputs) or "none"
                raise UsageError(
                    f"`{flag} {item}`: pipeline `{plan.pipeline}` has no input `{name}`"
                    f" (its inputs: {known})"
                )
            if flag == "--input-str":
                value = json.dumps(value)
            elif value.startswith("@"):
                try:
                    value = Path(value[1:]).read_text()
                except OSError as e:
                    raise UsageError(f"input `{name}`: {value[1:]}: {e.strerror}") from e
            given[name] = value
    for name, entry in plan.inputs.items():
        if not entry["given"] and name not in given:
            raise UsageError(
                f"input `{name}` ({entry['type']}) is missing: give it with `--input {name}=JSON`"
            )
    return given


def forwarded_env() -> dict[str, str]:
    """The driver's ``FLOWYML_*`` and ``RUST_LOG`` variables, which each step
    process gets too (``FLOWYML_GPU`` is set per task, from Ray's GPU)."""
    return {
        k: v
        for k, v in os.environ.items()
        if (k.startswith("FLOWYML_") and k != "FLOWYML_GPU") or k == "RUST_LOG"
    }


@dataclass
class StepRecord:
    name: str
    status: str = "skipped"
    key: str | None = None
    node: str | None = None
    task: int | None = None
    attempts: int = 0
    start_us: int = 0
    duration_us: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    rerun_reason: str | None = None


class Driver:
    """One distributed run of a pipeline."""

    def __init__(self, binary: str, plan: Plan, cache: CacheClient, options: dict):
        import ray

        # Workers need not have this package: its code travels with the task.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__package__])
        self.ray = ray
        self.binary = binary
        self.plan = plan
        self.cache = cache
        self.gpu_resource = options.get("gpu_resource")
        self.retries = options.get("retries", 0)
        self.tmp = Path(tempfile.mkdtemp(prefix="flowyml-ray-driver-"))
        self.fps: dict[str, str] = {}
        self.refs: dict = {}
        self.records = {name: StepRecord(name) for name in plan.steps}
        self.inflight: dict = {}
        self.started_groups: set[int] = set()
        self.binary_ref = None
        self.tasks = 0
        self.errors: list[str] = []
        self.t0 = time.time()
        self.driver_node = ray.get_runtime_context().get_node_id()
        self.env = forwarded_env()
        self.remote = ray.remote(_group_task)

    def _us(self, t: float) -> int:
        return max(0, int((t - self.t0) * 1e6))

    def check_placement(self) -> None:
        """Refuses a GPU step that no node can take: Ray would wait for such a
        node forever."""
        resource = self.gpu_resource or "GPU"
        if self.ray.cluster_resources().get(resource, 0) >= 1:
            return
        for group in self.plan.groups:
            if group.gpu:
                step = next(s for s in group.steps if "gpu" in self.plan.steps[s]["resources"])
                raise UsageError(
                    f"step `{step}` uses the GPU, but no node of the cluster has a"
                    f" `{resource}` resource: start a node with one, or name the resource"
                    " that stands for a GPU with --gpu-resource"
                )

    def give_inputs(self, given: dict[str, str]) -> None:
        for i, (name, text) in enumerate(given.items()):
            path = self.tmp / f"input-{i}.bin"
            self.fps[name] = self.cache.input(name, text, path)
            self.refs[name] = path

    def ref_of(self, artifact: str):
        """The object holding ``artifact``'s bytes: put from a given input or
        from the cache on first use."""
        ref = self.refs.get(artifact)
        if isinstance(ref, Path):
            ref = self.ray.put(ref.read_bytes())
        elif ref is None:
            path = self.tmp / f"cached-{len(self.refs)}.bin"
            ref = self.ray.put(self.cache.get(self.fps[artifact], path))
        self.refs[artifact] = ref
        return ref

    def ready(self, group: Group) -> bool:
        return all(a in self.fps or self._given_in_code(a) for a in group.inputs)

    def _given_in_code(self, artifact: str) -> bool:
        entry = self.plan.inputs.get(artifact)
        return entry is not None and entry["given"] and artifact not in self.fps

    def try_cache(self, group: Group) -> bool:
        """Serves the group from the cache if every step of it hits."""
        started = time.time()
        known = dict(self.fps)
        hits = []
        for step in group.steps:
            inputs = self.plan.steps[step]["inputs"]
            if any(a not in known and not self._given_in_code(a) for a in inputs):
                return False
            reply = self.cache.lookup(step, {a: known[a] for a in inputs if a in known})
            self.records[step].key = reply["key"]
            if not reply["hit"]:
                return False
            for output in reply["outputs"]:
                known[output["name"]] = output["fingerprint"]
            hits.append(step)
        for step in hits:
            record = self.records[step]
            record.status = "cached"
            record.start_us = self._us(started)
            record.duration_us = self._us(time.time()) - record.start_us
        self.fps = known
        return True

    def submit(self, group: Group, attempt: int = 1) -> None:
        if self.binary_ref is None:
            self.binary_ref = self.ray.put(Path(self.binary).read_bytes())
        inputs = [a for a in group.inputs if not self._given_in_code(a)]
        spec = {
            "pipeline": self.plan.pipeline,
            "steps": group.steps,
            "inputs": inputs,
            "outputs": group.outputs,
            "binary_sha256": self.plan.binary_sha256,
            "env": self.env,
        }
        options = {"num_cpus": 1, "num_returns": 1 + len(group.outputs), "max_retries": 3}
        if group.gpu:
            if self.gpu_resource:
                options["resources"] = {self.gpu_resource: 1}
            else:
                options["num_gpus"] = 1
        if group.watches:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                self.driver_node, soft=False
            )
        args = [self.ref_of(a) for a in inputs]
        refs = self.remote.options(**options).remote(spec, [self.binary_ref], *args)
        refs = refs if isinstance(refs, list) else [refs]
        self.tasks += 1
        self.inflight[refs[0]] = (group, refs[1:], attempt, time.time(), self.tasks - 1)

    def schedule(self) -> None:
        progress = True
        while progress:
            progress = False
            for group in self.plan.groups:
                if group.index in self.started_groups or not self.ready(group):
                    continue
                self.started_groups.add(group.index)
                progress = True
                if not self.try_cache(group):
                    self.submit(group)

    def finished(self, ref) -> tuple | None:
        """Handles a task that ended; returns what to commit, if it ran."""
        group, out_refs, attempt, submitted, task = self.inflight.pop(ref)
        try:
            info = self.ray.get(ref)
        except Exception as e:  # a step's failure or Ray's, both end here
            cause = getattr(e, "cause", None) or e
            # The class travelled by value: known by its fields, not its identity.
            step_failed = hasattr(cause, "stderr") and hasattr(cause, "manifest")
            if step_failed and attempt <= self.retries:
                self.submit(group, attempt + 1)
                return None
            self.fail(group, cause, attempt, task)
            for out in out_refs:  # read, so that Ray does not report them unhandled
                try:
                    self.ray.get(out)
                except Exception:  # noqa: BLE001 - the same failure, already handled
                    pass
            return None
        manifest = info["manifest"]
        for output in manifest["outputs"]:
            self.fps[output["name"]] = output["fingerprint"]
        self.refs.update(zip(group.outputs, out_refs))
        for step in manifest["steps"]:
            record = self.records[step["name"]]
            record.status = step["status"]
            record.key = step["cache_key"]
            record.node = info["node_id"]
            record.task = task
            record.attempts = attempt
            record.start_us = self._us(info["started"])
            record.duration_us = step["duration_us"]
            record.notes = step["notes"]
            record.rerun_reason = "no_entry"
        return group, manifest, out_refs

    def fail(self, group: Group, cause: BaseException, attempt: int, task: int) -> None:
        manifest = getattr(cause, "manifest", None) or {"steps": []}
        by_name = {s["name"]: s for s in manifest["steps"]}
        stderr = getattr(cause, "stderr", str(cause)).strip()
        for step in group.steps:
            record = self.records[step]
            record.attempts = attempt
            record.task = task
            entry = by_name.get(step)
            record.status = entry["status"] if entry else "failed"
            if entry and entry.get("error"):
                record.error = entry["error"]
            if record.status == "failed":
                record.error = record.error or stderr
                self.errors.append(f"step `{step}` failed: {record.error}")

    def commit(self, group: Group, manifest: dict, out_refs: list) -> None:
        directory = Path(tempfile.mkdtemp(dir=self.tmp, prefix="commit-"))
        files = {o["name"]: o["file"] for o in manifest["outputs"]}
        for name, data in zip(group.outputs, self.ray.get(out_refs)):
            (directory / files[name]).write_bytes(data)
        inputs = {a: self.fps[a] for a in group.inputs if a in self.fps}
        self.cache.commit(manifest, directory, inputs)

    def run(self) -> None:
        self.schedule()
        while self.inflight:
            done, _ = self.ray.wait(list(self.inflight), num_returns=1)
            commits = [c for c in (self.finished(ref) for ref in done) if c]
            self.schedule()
            for commit in commits:
                self.commit(*commit)

    def report(self, run_id: int) -> dict:
        steps = []
        for name in self.plan.steps:
            r = self.records[name]
            steps.append(
                {
                    "name": name,
                    "status": r.status,
                    "start_us": r.start_us,
                    "duration_us": r.duration_us,
                    "worker": None,
                    "attempts": r.attempts,
                    "notes": r.notes,
                    "error": r.error,
                    "rerun_reason": r.rerun_reason,
                    "cache_key": r.key,
                    "node": r.node,
                    "task": r.task,
                }
            )
        artifacts = [
            {
                "name": name,
                "type": a["type"],
                "producer": a["producer"],
                "fingerprint": self.fps.get(name),
            }
            for name, a in self.plan.artifacts.items()
        ]
        nodes = [
            {
                "node_id": n["NodeID"],
                "address": n["NodeManagerAddress"],
                "resources": n["Resources"],
            }
            for n in self.ray.nodes()
            if n["Alive"]
        ]
        started = datetime.datetime.fromtimestamp(self.t0, datetime.timezone.utc)
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "run_id": run_id,
            "pipeline": self.plan.pipeline,
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "duration_us": self._us(time.time()),
            "workers": int(sum(n["resources"].get("CPU", 0) for n in nodes)),
            "succeeded": not self.errors
            and all(r.status in ("ran", "cached") for r in self.records.values()),
            "steps": steps,
            "artifacts": artifacts,
            "engine": "ray",
            "tasks": self.tasks,
            "driver_node": self.driver_node,
            "nodes": nodes,
        }


def read_plan(binary: str, pipeline: str) -> Plan:
    proc = subprocess.run(
        [binary, "plan", pipeline, "--json"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise UsageError(f"`{binary} plan {pipeline} --json`: {proc.stderr.strip()}")
    return parse_plan(json.loads(proc.stdout))


def connect(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    kwargs = {"log_to_driver": False, "logging_level": "warning"}
    if address:
        kwargs["address"] = address
        host = address.rsplit(":", 1)[0]
        if host.startswith("127."):
            # A loopback cluster: the driver joins it on the nodes' address.
            kwargs["_node_ip_address"] = host
    ray.init(**kwargs)


def run_pipeline(
    binary: str,
    pipeline: str,
    *,
    address: str | None = None,
    inputs: list[str] = (),
    input_strs: list[str] = (),
    cache_dir: str = ".flowyml",
    gpu_resource: str | None = None,
    retries: int = 0,
) -> dict:
    """Runs ``pipeline`` of ``binary`` on the Ray cluster at ``address``;
    returns the report, or raises :class:`RunFailed` (with it) or
    :class:`UsageError`."""
    if not os.access(binary, os.X_OK):
        raise UsageError(f"--binary {binary}: not an executable file")
    if retries < 0:
        raise UsageError(f"--retries {retries}: give 0 or more")
    # The program hashed itself for the plan; each node checks the bytes it
    # is sent against that hash, so the driver need not hash them again.
    plan = read_plan(binary, pipeline)
    given = parse_inputs(list(inputs), list(input_strs), plan)
    connect(address)
    cache = CacheClient(binary, pipeline, cache_dir)
    try:
        if cache.binary_sha256 != plan.binary_sha256:
            raise UsageError(f"{binary} changed between `plan` and `cache serve`: run again")
        driver = Driver(binary, plan, cache, {"gpu_resource": gpu_resource, "retries": retries})
        driver.check_placement()
        run_id = cache.begin()
        driver.give_inputs(given)
        try:
            driver.run()
        finally:
            report = driver.report(run_id)
            cache.finish(report["succeeded"])
    finally:
        cache.close()
    if not report["succeeded"]:
        skipped = [s["name"] for s in report["steps"] if s["status"] == "skipped"]
        message = "; ".join(driver.errors) or "the run did not finish"
        if skipped:
            message += f" (skipped: {', '.join(skipped)})"
        raise RunFailed(message, report)
    return report
