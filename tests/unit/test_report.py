"""The HTML report: content from real LoadGen logs and traces, and a headless Chromium screenshot."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import test_submission_support as sup
from mlperf_bert.cli import main as cli_main

pytest.importorskip("matplotlib", reason="the report needs the [report] extra (matplotlib)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_vocab):
    base = tmp_path_factory.mktemp("report")
    server = sup.quick_run(base, synthetic_vocab, name="server", scenario="Server", trace=True, duration_s=0.5,
                           expected_qps=400, options={"sleep_per_sample_s": 0.0005})
    offline = sup.quick_run(base, synthetic_vocab, name="offline", modes=("performance",))  # no trace
    return base, server, offline


def test_trace_parsing_matches_loadgen_statistics(runs):
    from mlperf_bert.report.html import load_run

    _, server, _ = runs
    view = load_run(server.run_dir)
    n = view.detail_values["result_query_count"]
    assert len(view.trace) == n  # one Sample event per Server query
    # LoadGen's percentiles are order statistics of the same per-sample latencies
    lat = np.sort(view.trace.latency_ms)
    p99 = server.performance.latency_ms[99.0]
    assert lat[0] <= p99 <= lat[-1]
    assert np.isclose(lat, p99, atol=1e-6).any()
    assert view.trace.latency_ms.max() == pytest.approx(view.detail_values["result_max_latency_ns"] / 1e6)


def test_report_content(runs, tmp_path):
    base, server, offline = runs
    out = tmp_path / "r.html"
    assert cli_main(["report", str(server.run_dir), str(offline.run_dir), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.count("<svg") == 3  # histogram + throughput for the traced run, percentiles for the other
    assert 'id="latency-histogram-0"' in page and 'id="throughput-0"' in page
    assert 'id="latency-percentiles-1"' in page and "rerun with <code>--trace</code>" in page
    assert "<h2>Side by side</h2>" in page and "F1 &gt;= " not in page  # no target recorded in these runs
    assert "Rules preset <b>quick</b>" in page
    for ref in ('src="http', "href=\"http", "url(http", "<script", "<link", "@import"):  # self-contained
        assert ref not in page
    f1 = f"{server.accuracy.f1:.4f}"
    assert f"<th>F1</th><td>{f1}</td>" in page


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    import matplotlib.image as mpimg

    _, server, _ = runs
    html = tmp_path / "report.html"
    assert cli_main(["report", str(server.run_dir), "-o", str(html)]) == 0
    png = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,2600", f"--screenshot={png}", html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = mpimg.imread(png)[..., :3]  # float [H, W, 3] in 0..1
    assert img.shape[:2] == (2600, 1200)
    assert (img < 0.9).any(axis=-1).mean() > 0.02  # not blank: text, tables and plots

    def near(rgb):
        return (np.abs(img - np.array(rgb) / 255).max(axis=-1) < 0.06).sum()

    assert near((0x1F, 0x77, 0xB4)) > 500  # histogram bars (matplotlib C0)
    assert near((0x94, 0x67, 0xBD)) > 200  # throughput line (C4)


def test_default_run_report_has_trace_plots(tmp_path):
    """No --trace: a performance run planned at <= 500 samples/s writes LoadGen's trace by default (it costs
    under 1% of the throughput), so its report has the histogram and the throughput plot."""
    from fakes import registry_with_fakes, synthetic_features
    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.config import DataPaths
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.runner import RunConfig, run

    examples, feats = synthetic_features(50)
    cfg = RunConfig(data=DataPaths(tmp_path / "x", tmp_path / "y", tmp_path), backend=BackendConfig(name="echo"),
                    loadgen=LoadGenConfig(rules="quick", quick_duration_s=0.2, expected_qps=400),
                    modes=("performance",), output_dir=tmp_path / "runs", run_name="default", probe=False)
    res = run(cfg, registry=registry_with_fakes(), load_data=lambda *_: (examples, feats))
    assert res.info["performance_trace"]["enabled"] is True
    assert (res.run_dir / "performance" / "mlperf_log_trace.json").stat().st_size > 0
    out = tmp_path / "r.html"
    assert cli_main(["report", str(res.run_dir), "-o", str(out)]) == 0
    page = out.read_text()
    assert 'id="latency-histogram-0"' in page and 'id="throughput-0"' in page
