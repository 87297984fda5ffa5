"""The driver's own logic: plans, inputs, binaries on nodes, the cache client.

The cache client test runs the real ``cache serve`` of the ``distributed``
example, found through ``FLOWYML_DISTRIBUTED_BINARY`` (``.ci/run`` sets it);
the Ray runs themselves are tested from Rust (``tests/ray.rs``)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from flowyml_ray.cache import CacheClient, CacheError
from flowyml_ray.driver import UsageError, forwarded_env, parse_inputs
from flowyml_ray.plan import PlanError, parse_plan
from flowyml_ray.task import gpu_env, node_binary


def plan_dict(**overrides):
    """A plan as ``plan --json`` prints it: load -> (index -> probe) and a GPU step."""

    def step(name, inputs, outputs, group, resources=(), watch=()):
        return {
            "name": name,
            "inputs": inputs,
            "outputs": outputs,
            "resources": list(resources),
            "watch": list(watch),
            "group": group,
        }

    def artifact(name, producer, codec="persistent"):
        return {"name": name, "type": "T", "producer": producer, "codec": codec}

    plan = {
        "format_version": 1,
        "pipeline": "p",
        "binary_sha256": "ab" * 32,
        "inputs": [
            {"name": "rows", "type": "usize", "given": False},
            {"name": "scale", "type": "f64", "given": True},
        ],
        "artifacts": [
            artifact("rows", None),
            artifact("scale", None),
            artifact("data", "load"),
            artifact("index", "build", "opaque"),
            artifact("sizes", "probe"),
            artifact("gram", "gram"),
        ],
        "steps": [
            step("load", ["rows", "scale"], ["data"], 0, watch=["data.csv"]),
            step("build", ["data"], ["index"], 1),
            step("probe", ["index"], ["sizes"], 1),
            step("gram", ["data"], ["gram"], 2, resources=["gpu"]),
        ],
        "groups": [["load"], ["build", "probe"], ["gram"]],
    }
    plan.update(overrides)
    return plan


def test_groups_read_from_outside_and_return_only_persistent_outputs():
    plan = parse_plan(plan_dict())
    load, opaque, gram = plan.groups
    assert load.inputs == ["rows", "scale"] and load.outputs == ["data"]
    assert load.watches and not load.gpu
    # The opaque edge stays inside its group: only `sizes` leaves it.
    assert opaque.inputs == ["data"] and opaque.outputs == ["sizes"]
    assert gram.gpu and not gram.watches
    assert plan.group_of("probe") is opaque


def test_a_plan_of_another_format_or_with_an_opaque_edge_between_groups_is_refused():
    with pytest.raises(PlanError, match="plan format 2"):
        parse_plan(plan_dict(format_version=2))
    split = plan_dict(groups=[["load"], ["build"], ["probe"], ["gram"]])
    for i, step in enumerate(split["steps"]):
        step["group"] = i
    with pytest.raises(PlanError, match="`index`"):
        parse_plan(split)


def test_inputs_are_json_checked_against_the_plan(tmp_path):
    plan = parse_plan(plan_dict())
    assert parse_inputs(["rows=3"], [], plan) == {"rows": "3"}
    assert parse_inputs([], ["rows=a b"], plan) == {"rows": '"a b"'}
    file = tmp_path / "rows.json"
    file.write_text("7")
    assert parse_inputs([f"rows=@{file}"], [], plan) == {"rows": "7"}
    with pytest.raises(UsageError, match="no input `rws`.*`rows`"):
        parse_inputs(["rws=3"], [], plan)
    with pytest.raises(UsageError, match="input `rows` \\(usize\\) is missing"):
        parse_inputs([], [], plan)
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_inputs(["rows"], [], plan)
    with pytest.raises(UsageError, match="input `rows`: .*missing.json"):
        parse_inputs([f"rows=@{tmp_path / 'missing.json'}"], [], plan)


def test_a_node_keeps_each_binary_by_its_hash_and_checks_what_it_is_sent(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWYML_RAY_BIN_DIR", str(tmp_path))
    data = b"#!/bin/sh\necho hi\n"
    sha = hashlib.sha256(data).hexdigest()
    fetched = []

    def fetch():
        fetched.append(1)
        return data

    path = node_binary(sha, fetch)
    assert open(path, "rb").read() == data and os.access(path, os.X_OK)
    assert node_binary(sha, fetch) == path and len(fetched) == 1, "fetched once"
    with pytest.raises(RuntimeError, match="hashes to"):
        node_binary("00" * 32, fetch)
    assert not (tmp_path / ("00" * 32)).exists()


def test_the_gpu_ray_assigns_is_the_device_flowyml_opens():
    assert gpu_env([]) == {}
    assert gpu_env([3, 1]) == {"FLOWYML_GPU": "3"}


def test_flowyml_variables_reach_the_steps_but_not_the_drivers_gpu(monkeypatch):
    monkeypatch.setenv("FLOWYML_DISTRIBUTED_FAIL", "join")
    monkeypatch.setenv("FLOWYML_GPU", "0")
    monkeypatch.setenv("RUST_LOG", "debug")
    env = forwarded_env()
    assert env["FLOWYML_DISTRIBUTED_FAIL"] == "join" and env["RUST_LOG"] == "debug"
    assert "FLOWYML_GPU" not in env


@pytest.fixture
def binary():
    path = os.environ.get("FLOWYML_DISTRIBUTED_BINARY")
    if not path:
        pytest.skip("FLOWYML_DISTRIBUTED_BINARY is not set (the `distributed` example's path)")
    return path


def test_the_cache_client_speaks_to_cache_serve(binary, tmp_path):
    plan = json.loads(
        subprocess.run(
            [binary, "plan", "distributed", "--json"], capture_output=True, check=True
        ).stdout
    )
    cache = CacheClient(binary, "distributed", str(tmp_path / "cache"))
    try:
        assert cache.binary_sha256 == plan["binary_sha256"]
        run = cache.begin()
        rows = cache.input("rows", "2000", tmp_path / "rows.bin")
        assert len(rows) == 64 and (tmp_path / "rows.bin").stat().st_size > 0
        miss = cache.lookup("samples", {"rows": rows})
        assert miss["hit"] is False and len(miss["key"]) == 64
        with pytest.raises(CacheError, match="`samplez`"):
            cache.lookup("samplez", {"rows": rows})
        with pytest.raises(CacheError, match="not in the cache"):
            cache.get("00" * 32, tmp_path / "x.bin")
        assert cache.finish(False) == run
    finally:
        cache.close()
