"""``mlperf-bert report``: one self-contained HTML page for one or more run folders.

Per run: settings, validity (LoadGen's verdict and the checker's rules), accuracy, the latency
distribution (histogram with the 50/90/99th percentiles) and throughput over time. Several runs also
get a side-by-side table. Plots are matplotlib SVG written into the page, so it needs no network or
script to view.

Per-sample data comes from LoadGen's trace (``mlperf_log_trace.json``, parsed by ``logs.trace``), which a
performance run writes by default when it costs under 1% of the planned throughput, and always with
``--trace`` (``loadgen.settings.trace_by_default``). Without a trace the page shows the detail log's
percentiles and says how to get the rest.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlperf_bert.errors import ConfigError, DataError
from mlperf_bert.fileio import read_json, write_atomic
from mlperf_bert.logs.parse import PerfResult, perf_result, read_detail_log
from mlperf_bert.logs.trace import TraceSamples, read_trace


@dataclass
class RunView:
    """What the report shows of one run folder."""

    path: Path
    name: str
    info: dict
    performance: PerfResult | None = None
    detail_values: dict = field(default_factory=dict)
    trace: TraceSamples | None = None
    accuracy: dict | None = None
    findings: list = field(default_factory=list)


def load_run(run_dir: Path) -> RunView:
    """Read a run folder (run.json, performance detail log, trace, accuracy).

    Raises:
        DataError: not a run folder.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise DataError(f"{run_dir} is not a run folder (no run.json)")
    info = read_json(run_dir / "run.json", "run record")
    view = RunView(path=run_dir, name=run_dir.name, info=info, accuracy=info.get("accuracy"))
    detail_path = run_dir / "performance" / "mlperf_log_detail.txt"
    if detail_path.is_file():
        detail = read_detail_log(detail_path)
        view.performance = perf_result(detail)
        view.detail_values = detail.values
        from mlperf_bert.submission.checker import performance_findings

        rules = info.get("config", {}).get("loadgen", {}).get("rules", "v1.0")
        view.findings = performance_findings(detail, "quick" if rules == "quick" else rules, detail_path,
                                             root=run_dir)
        trace = run_dir / "performance" / "mlperf_log_trace.json"
        if trace.is_file() and trace.stat().st_size > 0:  # LoadGen leaves an empty file without --trace
            view.trace = read_trace(trace)
    return view


# -- plots -----------------------------------------------------------------------------------------
def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if 0 <= start < end:  # RDF creator/date block: no use in a page, and it makes output time-dependent
        text = text[:start] + text[end + len("</metadata>"):]
    return text


def _plt():
    try:
        import matplotlib
    except ModuleNotFoundError as exc:
        from mlperf_bert.errors import BackendUnavailable

        raise BackendUnavailable("the HTML report needs matplotlib; pip install 'mlperf-bert[report]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_histogram_svg(view: RunView) -> str:
    """Histogram of per-sample latency (ms) with p50/p90/p99 lines (and the Server bound)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    lat = view.trace.latency_ms
    ax.hist(lat, bins=min(60, max(10, len(lat) // 20)), color="#1f77b4")
    pct = view.performance.latency_ms if view.performance else {}
    for p, color in ((50.0, "#2ca02c"), (90.0, "#ff7f0e"), (99.0, "#d62728")):
        if p in pct:
            ax.axvline(pct[p], color=color, linestyle="--", linewidth=1.5, label=f"p{p:g} {pct[p]:.2f} ms")
    title = f"latency of {len(lat):,} samples"
    if view.performance and view.performance.scenario == "Server":
        if lat.max() >= 0.5 * 130.0:
            ax.axvline(130.0, color="black", linewidth=1.0, label="bound 130 ms")
        else:  # drawing it would squash the histogram into the left edge
            title += " (Server bound 130 ms, off scale)"
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.set_xlabel("latency (ms, scheduled to completed)")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _svg(fig)


def throughput_svg(view: RunView) -> str:
    """Completed samples per second over the run (bins of ~1/50 of the run, at least 0.1 s)."""
    plt = _plt()
    done = np.sort(view.trace.completed_s)
    span = max(float(done[-1]), 1e-3)
    width = max(0.1, span / 50)
    edges = np.arange(0.0, span + width, width)
    counts, _ = np.histogram(done, bins=edges)
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    ax.step(edges[:-1], counts / width, where="post", color="#9467bd", linewidth=1.5)
    ax.fill_between(edges[:-1], counts / width, step="post", color="#9467bd", alpha=0.25)
    if view.performance:
        ax.axhline(view.performance.samples_per_second, color="black", linestyle=":", linewidth=1,
                   label=f"LoadGen: {view.performance.samples_per_second:,.1f} samples/s")
        ax.legend(fontsize=8)
    ax.set_xlabel("time since test start (s)")
    ax.set_ylabel("completed samples / s")
    ax.set_title("throughput over time")
    return _svg(fig)


def percentile_svg(view: RunView) -> str:
    """Latency percentiles from the detail log (shown when there is no trace)."""
    plt = _plt()
    pct = sorted(view.performance.latency_ms.items())
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    ax.bar([f"p{p:g}" for p, _ in pct], [v for _, v in pct], color="#1f77b4")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency percentiles (detail log)")
    return _svg(fig)


# -- page ------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:16px 0 6px} table{border-collapse:collapse;margin:6px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top} th{background:#f4f4f4}
.ok{color:#1a7f37;font-weight:600} .bad{color:#cf222e;font-weight:600} .warn{color:#9a6700}
.note{color:#555;font-size:13px} figure{margin:8px 0} .quick{background:#fff8c5;padding:6px 10px}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _kv_table(rows) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _settings_rows(view: RunView) -> list:
    c = view.info.get("config", {})
    lg = view.info.get("performance_loadgen") or c.get("loadgen", {})
    be, sut = c.get("backend", {}), c.get("sut", {})
    b = sut.get("batcher", {})
    v = view.info.get("versions", {})
    m = view.info.get("machine", {})
    rows = [("scenario", sut.get("scenario")), ("rules", lg.get("rules")), ("backend", be.get("name")),
            ("model", be.get("model")), ("threads", be.get("threads") or "default"),
            ("batching", f"max {b.get('max_batch_size')} samples, token budget {b.get('token_budget')}, "
                         f"sort {b.get('sort_by_length')}, Server wait {b.get('server_max_wait_ms')} ms"),
            ("workers", sut.get("workers")), ("response rows", sut.get("response_rows")),
            ("expected/target QPS", lg.get("expected_qps")), ("expected latency (ms)", lg.get("expected_latency_ms")),
            ("LoadGen", v.get("mlcommons-loadgen")), ("mlperf-bert", v.get("mlperf_bert")),
            ("machine", f"{m.get('cpu', '?')}, {m.get('logical_cpus', '?')} CPUs, {m.get('memory_gib', '?')} GiB"),
            ("started (UTC)", view.info.get("started_utc")), ("wall time (s)", view.info.get("wall_seconds"))]
    return [(k, val) for k, val in rows if val is not None]


def _run_section(view: RunView, idx: int) -> str:
    out = [f'<h2 id="run-{idx}">{_e(view.name)}</h2>']
    rules = (view.info.get("config", {}).get("loadgen", {}) or {}).get("rules")
    if rules == "quick":
        out.append('<p class="quick">Rules preset <b>quick</b>: a development run, never valid for submission.</p>')
    out.append("<h3>Settings</h3>" + _kv_table(_settings_rows(view)))
    out.append("<h3>Accuracy</h3>")
    acc = view.accuracy
    target = view.info.get("config", {}).get("accuracy_target")
    if acc:
        full_dev = acc.get("full_dev", True)  # run folders from before the field was recorded: full dev
        rows = [("F1", f"{acc['f1']:.4f}"), ("exact match", f"{acc['exact_match']:.4f}"),
                ("questions", f"all {acc['questions_total']:,}" + ("" if full_dev else
                                                                   " (a subset, not SQuAD v1.1 dev)"))]
        if acc.get("questions_without_features"):
            rows.append(("without a feature", f"{acc['questions_without_features']:,} (answered 'empty')"))
        if acc.get("covered"):
            c = acc["covered"]
            rows.append(("partial log", f"F1 {c['f1']:.4f}, EM {c['exact_match']:.4f} over the "
                                        f"{c['questions']:,} questions it covers"))
        if target:
            verdict = ("not judged (a subset)" if not full_dev else
                       "met" if acc["f1"] >= target["target_f1"] else "NOT met")
            rows.append(("target", f"F1 >= {target['target_f1']:.3f} ({target['benchmark']}, "
                                   f"{target['fraction'] * 100:g}% of {target['reference_f1']:.3f} {target['model']}): "
                                   f"{verdict}"))
        out.append(_kv_table(rows))
    else:
        out.append('<p class="note">No accuracy run in this folder.</p>')
    p = view.performance
    out.append("<h3>Performance and validity</h3>")
    if p is None:
        out.append('<p class="note">No performance run in this folder.</p>')
        return "\n".join(out)
    verdict = '<span class="ok">VALID</span>' if p.valid else '<span class="bad">INVALID</span>'
    rows = [(p.metric_name, f"{p.metric_value:,.3f} {p.metric_unit}")]
    if p.metric_unit != "samples/s":
        rows.append(("samples/s", f"{p.samples_per_second:,.2f}"))
    rows += [("queries", f"{p.query_count:,}"),
            ("min duration (s)", f"{p.duration_s:g}")]
    rows += [(f"p{k:g} latency", f"{v:.3f} ms") for k, v in sorted(p.latency_ms.items())]
    out.append(f"<p>LoadGen says {verdict}" + (": " + _e("; ".join(p.invalid_reasons)) if p.invalid_reasons else "")
               + "</p>" + _kv_table(rows))
    if view.findings:
        items = "".join(f'<li class="{"bad" if f.level == "fail" else "warn"}">{_e(f.level)}: {_e(f.message)}</li>'
                        for f in view.findings)
        out.append(f"<p>Checker ({_e(rules)} rules; waived = would fail a real submission):</p><ul>{items}</ul>")
    else:
        out.append('<p class="ok">Meets every checked performance rule.</p>')
    out.append("<h3>Latency distribution</h3>")
    if view.trace is not None:
        out.append(f'<figure id="latency-histogram-{idx}">{latency_histogram_svg(view)}</figure>')
        out.append("<h3>Throughput over time</h3>")
        out.append(f'<figure id="throughput-{idx}">{throughput_svg(view)}</figure>')
    else:
        if p.latency_ms:
            out.append(f'<figure id="latency-percentiles-{idx}">{percentile_svg(view)}</figure>')
        out.append('<p class="note">No LoadGen trace in this run (a performance run writes it by default only '
                   "when it costs under 1% of the throughput, at 500 samples/s or less): rerun with "
                   "<code>--trace</code> for the latency histogram and throughput over time.</p>")
    return "\n".join(out)


def _comparison(views: list[RunView]) -> str:
    head = "<tr><th></th>" + "".join(f'<th><a href="#run-{i}">{_e(v.name)}</a></th>' for i, v in enumerate(views)) + "</tr>"

    def row(label, fn):
        cells = []
        for v in views:
            try:
                cells.append(_e(fn(v)))
            except (KeyError, TypeError, AttributeError):
                cells.append("")
        return f"<tr><th>{_e(label)}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

    rows = [
        row("scenario", lambda v: v.info["config"]["sut"]["scenario"]),
        row("backend", lambda v: v.info["config"]["backend"]["name"]),
        row("rules", lambda v: v.info["config"]["loadgen"]["rules"]),
        row("batch / token budget", lambda v: f"{v.info['config']['sut']['batcher']['max_batch_size']} / "
                                              f"{v.info['config']['sut']['batcher']['token_budget']}"),
        row("F1", lambda v: f"{v.accuracy['f1']:.3f}" if v.accuracy else ""),
        row("metric", lambda v: f"{v.performance.metric_value:,.2f} {v.performance.metric_unit}"),
        row("samples/s", lambda v: f"{v.performance.samples_per_second:,.2f}"),
        row("p50 / p99 ms", lambda v: f"{v.performance.latency_ms.get(50.0, float('nan')):.2f} / "
                                      f"{v.performance.latency_ms.get(99.0, float('nan')):.2f}"),
        row("LoadGen", lambda v: "VALID" if v.performance.valid else "INVALID"),
    ]
    return "<h2>Side by side</h2><table>" + head + "".join(rows) + "</table>"


def render_report(run_dirs: list[Path]) -> str:
    """The HTML page for ``run_dirs`` (one section each; a comparison table first when several)."""
    if not run_dirs:
        raise ConfigError("give at least one run folder")
    views = [load_run(d) for d in run_dirs]
    title = "mlperf-bert report: " + ", ".join(v.name for v in views)
    body = [f"<h1>{_e(title)}</h1>",
            '<p class="note">MLPerf Inference BERT (SQuAD v1.1) through the MLPerf LoadGen.</p>']
    if len(views) > 1:
        body.append(_comparison(views))
    body += [_run_section(v, i) for i, v in enumerate(views)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write the page to ``out`` (atomically) and return it."""
    text = render_report([Path(d) for d in run_dirs])
    return write_atomic(Path(out), text)
