"""What one Ray task runs on its node: ``run-step`` of a group, in a fresh
process, its inputs and outputs bytes in the cache's own encoding."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

#: Where each node keeps the binaries it was sent, by sha256.
BIN_DIR_ENV = "FLOWYML_RAY_BIN_DIR"


class StepFailed(Exception):
    """A group's ``run-step`` failed: the steps, exit code, stderr and manifest."""

    def __init__(self, steps, code, stderr, manifest):
        super().__init__(steps, code, stderr, manifest)
        self.steps = steps
        self.code = code
        self.stderr = stderr
        self.manifest = manifest

    def __str__(self):
        return f"steps {', '.join(self.steps)} failed (exit {self.code}): {self.stderr.strip()}"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bin_dir() -> Path:
    return Path(os.environ.get(BIN_DIR_ENV) or Path(tempfile.gettempdir()) / "flowyml-ray-bin")


def node_binary(sha: str, fetch) -> str:
    """The program with hash ``sha`` on this node: cached by its hash, else
    fetched (``fetch()`` gives its bytes), verified and installed atomically."""
    path = bin_dir() / sha
    if path.exists():
        return str(path)
    data = fetch()
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise RuntimeError(f"the binary sent hashes to {got}, not {sha}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sha}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return str(path)


def gpu_env(gpu_ids) -> dict[str, str]:
    """``FLOWYML_GPU`` for the GPU Ray assigned: flowyml picks the adapter of
    that index (adapters in the order the driver lists them, which on a
    one-GPU node is the only one)."""
    if not gpu_ids:
        return {}
    return {"FLOWYML_GPU": str(int(gpu_ids[0]))}


def run_step(binary: str, spec: dict, inputs: list[bytes], env: dict[str, str]):
    """Runs ``spec["steps"]`` with ``inputs`` (bytes of ``spec["inputs"]``);
    returns the manifest and the bytes of ``spec["outputs"]``, in order."""
    with tempfile.TemporaryDirectory(prefix="flowyml-ray-") as tmp:
        tmp = Path(tmp)
        out = tmp / "out"
        args = [binary, "-q", "run-step", spec["pipeline"], *spec["steps"]]
        args += ["--output-dir", str(out), "--workers", "1"]
        for i, (name, data) in enumerate(zip(spec["inputs"], inputs)):
            path = tmp / f"in-{i}.bin"
            path.write_bytes(data)
            args += ["--input", f"{name}={path}"]
        proc = subprocess.run(
            args, capture_output=True, text=True, env={**os.environ, **env}, check=False
        )
        manifest_path = out / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        if proc.returncode != 0:
            raise StepFailed(spec["steps"], proc.returncode, proc.stderr, manifest)
        if manifest["binary_sha256"] != spec["binary_sha256"]:
            raise RuntimeError(
                f"run-step ran binary {manifest['binary_sha256']}, not {spec['binary_sha256']}"
            )
        files = {o["name"]: o["file"] for o in manifest["outputs"]}
        missing = [name for name in spec["outputs"] if name not in files]
        if missing:
            raise RuntimeError(f"run-step wrote no {', '.join(missing)}")
        return manifest, [(out / files[name]).read_bytes() for name in spec["outputs"]]
