"""Backends are plugins: a backend from another package registers through the ``mlperf_bert.backends``
entry-point group and runs through ``mlperf-bert run`` with its own flags, exactly like the built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakes import write_tiny_squad
from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec
from mlperf_bert.backends.registry import ENTRY_POINT_GROUP, BackendRegistry
from mlperf_bert.errors import ConfigError

PLUGIN = textwrap.dedent('''
    """A third-party backend: answers every sample with its first context token as the span."""
    import numpy as np

    from mlperf_bert.backends.base import BackendOption, BackendSpec


    class SpanBackend:
        name = "span"

        def __init__(self, offset):
            self.offset = offset

        @classmethod
        def from_config(cls, config):
            return cls(config.option("offset", 0))

        def predict(self, input_ids, input_mask, segment_ids):
            b, n = input_ids.shape
            out = np.full((b, n, 2), -10.0, dtype=np.float32)  # (B, L, 2)
            pos = np.argmax(segment_ids.astype(bool), axis=1) + self.offset  # first context token
            out[np.arange(b), pos, 0] = 10.0
            out[np.arange(b), pos + 1, 1] = 10.0  # a two-token answer
            return out

        def close(self):
            pass


    SPEC = BackendSpec(name="span", target="span_plugin:SpanBackend", extra="span", summary="test plugin",
                       framework="Span Runtime", packages=("span-plugin",),
                       options=(BackendOption("offset", int, 0, flag="--span-offset", minimum=0,
                                              help="span: answer this many tokens into the context"),))
''')


@pytest.fixture()
def plugin_path(tmp_path) -> Path:
    """A folder holding an installed-looking distribution ``span-plugin`` with one entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "span_plugin.py").write_text(PLUGIN)
    dist = site / "span_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: span-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nspan = span_plugin:SPEC\n")
    return site


def test_a_plugin_from_another_package_runs_through_run(plugin_path, tmp_path):
    """``mlperf-bert run --backend span --span-offset 0``: the plugin's flag is offered, its run scores
    the tiny dataset (the first context tokens 'the cat' are the gold answer: F1 100), and run.json names
    its framework and version from its spec."""
    dataset, vocab = write_tiny_squad(tmp_path / "data", repeat=3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    base = [sys.executable, "-m", "mlperf_bert.cli"]
    help_text = subprocess.run([*base, "run", "--help"], env=env, capture_output=True, text=True).stdout
    assert "--span-offset" in help_text and "span:" in help_text
    proc = subprocess.run([*base, "run", "--backend", "span", "--span-offset", "0", "--mode", "accuracy",
                           "--dataset", str(dataset), "--vocab", str(vocab), "--cache-dir", str(tmp_path / "c"),
                           "--output-dir", str(tmp_path / "runs"), "--run-name", "p", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "p"
    assert (run / "accuracy" / "accuracy.txt").read_text().startswith('{"exact_match": 100.0, "f1": 100.0}')
    info = json.loads((run / "run.json").read_text())
    assert info["backend"]["name"] == "span" and info["backend"]["framework"] == "Span Runtime 0.1"
    assert info["backend"]["options"] == {"offset": 0}
    bad = subprocess.run([*base, "run", "--backend", "span", "--span-offset", "-2", "--dataset", str(dataset),
                          "--vocab", str(vocab)], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("--span-offset -2: must be >= 0")


def test_registry_lists_the_built_ins_from_their_entry_points():
    reg = BackendRegistry.from_entry_points()
    assert {"onnxruntime", "pytorch", "tensorflow", "null"} <= set(reg.names())
    assert reg.spec("onnxruntime").framework == "ONNX Runtime" and reg.framework("onnxruntime").startswith("ONNX Runtime 1.")
    flags = {o.cli_flag for s in reg.specs() for o in s.options}
    assert {"--precision", "--ort-optimize", "--null-delay-ms", "--tf-graph-optimizations"} <= flags


def test_a_broken_plugin_is_reported_when_chosen_and_does_not_break_the_others(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = broken_plugin_missing:SPEC\n")
    monkeypatch.syspath_prepend(str(site))
    reg = BackendRegistry.from_entry_points()
    assert "onnxruntime" in reg.names() and "broken" not in reg.names()
    with pytest.raises(ConfigError, match="backend 'broken' is installed but unusable: broken_plugin_missing:SPEC "
                                          "failed to import: ModuleNotFoundError"):
        reg.spec("broken")


def test_options_are_checked_by_the_spec():
    spec = BackendSpec(name="x", target="m:C", options=(
        BackendOption("precision", str, "fp32", choices=("fp32", "bf16"), flag="--precision"),
        BackendOption("fast", bool, False)))
    reg = BackendRegistry([spec])
    assert reg.check(BackendConfig("x", options={"fast": "yes", "precision": "bf16"})).options == {
        "fast": True, "precision": "bf16"}
    with pytest.raises(ConfigError, match="--precision fp16: backend 'x' accepts fp32, bf16"):
        reg.check(BackendConfig("x", options={"precision": "fp16"}))
    with pytest.raises(ConfigError, match="backend 'x' has no option turbo .its options: --precision, --fast."):
        reg.check(BackendConfig("x", options={"turbo": 1}))
    assert spec.resolved_options({"fast": True}) == {"precision": "fp32", "fast": True}
