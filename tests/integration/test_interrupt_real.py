"""Ctrl-C while the real dev set's features are built (the one phase that needs a dataset big enough to take
a second): exit 130, no run folder, no half-written cache."""

from __future__ import annotations

from clirun import CliRun


def test_sigint_while_features_are_built_leaves_nothing(shared, tmp_path):
    """Ctrl-C while the dev-set features are built: exit 130, no run folder (not even --output-dir), no
    half-written cache file."""
    cache = tmp_path / "cache"
    run = CliRun(["--backend", "null", "--cache-dir", str(cache), "--output-dir", str(tmp_path / "runs"),
                  "--mode", "accuracy"], tmp_path)
    run.wait_for("into features")  # said right before the features are read or built (>= 1 s on a fresh cache)
    run.interrupt()
    rc, _, err = run.finish()
    assert rc == 130 and "terminate called" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("mlperf-bert run: interrupted during the features phase; "
                                            "no run folder was made")
    assert not (tmp_path / "runs").exists()
    assert not cache.exists() or list(cache.iterdir()) == []
