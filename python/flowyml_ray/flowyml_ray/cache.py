"""A client of ``cache serve``: the pipeline's cache, spoken to in JSON lines.

The program that defines the pipeline computes every key; this client only
sends fingerprints and files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


class CacheError(RuntimeError):
    """A request that ``cache serve`` refused, with its reason."""


class CacheClient:
    """``BINARY cache serve PIPELINE --cache-dir DIR`` as a subprocess."""

    def __init__(self, binary: str, pipeline: str, cache_dir: str):
        self._proc = subprocess.Popen(
            [binary, "cache", "serve", pipeline, "--cache-dir", cache_dir, "-q"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        hello = self._read()
        if not hello.get("ready"):
            raise CacheError(f"`cache serve` did not start: {hello}")
        self.binary_sha256 = hello["binary_sha256"]

    def _read(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            stderr = self._proc.stderr.read() if self._proc.stderr else ""
            raise CacheError(f"`cache serve` exited: {stderr.strip()}")
        return json.loads(line)

    def request(self, op: str, **fields) -> dict:
        """Sends one request; returns its reply, or raises its error."""
        self._proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self._proc.stdin.flush()
        reply = self._read()
        if not reply.get("ok"):
            raise CacheError(reply.get("error", "no reason given"))
        return reply

    def begin(self) -> int:
        return self.request("begin")["run_id"]

    def input(self, name: str, json_text: str, path: Path) -> str:
        """Encodes run-time input ``name`` to ``path``; returns its fingerprint."""
        return self.request("input", name=name, json=json_text, path=str(path))["fingerprint"]

    def lookup(self, step: str, inputs: dict[str, str]) -> dict:
        return self.request("lookup", step=step, inputs=inputs)

    def get(self, fingerprint: str, path: Path) -> bytes:
        self.request("get", fingerprint=fingerprint, path=str(path))
        return path.read_bytes()

    def commit(self, manifest: dict, directory: Path, inputs: dict[str, str]) -> dict:
        return self.request("commit", manifest=manifest, dir=str(directory), inputs=inputs)

    def finish(self, succeeded: bool) -> int:
        return self.request("finish", status="succeeded" if succeeded else "failed")["run_id"]

    def close(self) -> None:
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass  # it had exited: its status says how
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
