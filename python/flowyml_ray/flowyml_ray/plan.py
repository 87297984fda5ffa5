"""The plan of a pipeline (``plan --json``) as the driver uses it: groups of
steps that share a process, what each group reads and writes, and where it may
run."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The plan format this driver reads.
PLAN_FORMAT_VERSION = 1


class PlanError(ValueError):
    """A plan this driver cannot run."""


@dataclass
class Group:
    """Steps that run together in one ``run-step`` call (one Ray task)."""

    index: int
    steps: list[str]
    #: Artifacts read from outside the group (other groups, run-time inputs).
    inputs: list[str] = field(default_factory=list)
    #: Persistent artifacts it produces, in the order the task returns them.
    outputs: list[str] = field(default_factory=list)
    #: Whether a step of it uses the GPU.
    gpu: bool = False
    #: Whether a step of it watches files: it runs on the driver's node.
    watches: bool = False


@dataclass
class Plan:
    pipeline: str
    binary_sha256: str
    groups: list[Group]
    #: Artifact name -> its entry in the plan (type, producer, codec).
    artifacts: dict[str, dict]
    #: Run-time inputs of the pipeline by name.
    inputs: dict[str, dict]
    steps: dict[str, dict]

    def group_of(self, step: str) -> Group:
        return self.groups[self.steps[step]["group"]]


def parse_plan(plan: dict) -> Plan:
    """The driver's view of ``plan --json``."""
    version = plan.get("format_version")
    if version != PLAN_FORMAT_VERSION:
        raise PlanError(
            f"plan format {version}: this driver reads format {PLAN_FORMAT_VERSION};"
            " install the flowyml-ray that matches the program's flowyml"
        )
    steps = {s["name"]: s for s in plan["steps"]}
    artifacts = {a["name"]: a for a in plan["artifacts"]}
    groups = []
    for index, names in enumerate(plan["groups"]):
        group = Group(index=index, steps=list(names))
        produced = {o for name in names for o in steps[name]["outputs"]}
        for name in names:
            step = steps[name]
            group.gpu |= "gpu" in step["resources"]
            group.watches |= bool(step["watch"])
            for artifact in step["inputs"]:
                if artifact not in produced and artifact not in group.inputs:
                    group.inputs.append(artifact)
            for artifact in step["outputs"]:
                if artifacts[artifact]["codec"] == "persistent":
                    group.outputs.append(artifact)
        groups.append(group)
    for group in groups:
        for artifact in group.inputs:
            entry = artifacts.get(artifact)
            if entry is not None and entry["producer"] is not None:
                if entry["codec"] != "persistent":
                    raise PlanError(
                        f"artifact `{artifact}` ({entry['codec']}) crosses groups:"
                        " the plan's groups are inconsistent"
                    )
    return Plan(
        pipeline=plan["pipeline"],
        binary_sha256=plan["binary_sha256"],
        groups=groups,
        artifacts=artifacts,
        inputs={i["name"]: i for i in plan["inputs"]},
        steps=steps,
    )
