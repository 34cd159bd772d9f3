"""The short summary printed after every run (rich table on a terminal, plain text otherwise)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def print_run_summary(result, cfg, console: Console | None = None) -> None:
    """Print F1/EM (and what they cover), the target verdict, the performance metric, VALID/INVALID and why,
    the LoadGen settings that matter with their sources (``mlperf.conf``, ``rules:...``, ``user.conf:...``,
    ``flag:--...``, ``probe``), whether the trace was written, the harness settings (batching, workers,
    threads, tuned backend options; one line per source: ``flag:--...``, ``profile:<path>``, ``default:cpu``,
    ``default:cores/workers``) and the run folder.

    Args:
        result: ``runner.RunResult``.
        cfg: ``runner.RunConfig`` of that run.
    """
    console = console or Console()
    t = Table(title=f"mlperf-bert: {cfg.backend.name} / {cfg.sut.scenario}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value", overflow="fold")
    t.add_row("model", escape(str(cfg.backend.model)) if cfg.backend.model is not None
              else "none (the null backend answers zero logits)")
    if cfg.backend.options:  # e.g. precision=bf16, provider=cuda: what the backend was asked to run
        t.add_row("backend options", escape(", ".join(f"{k}={v}" for k, v in sorted(cfg.backend.options.items()))))
    if (c := result.info.get("cluster")) is not None:  # --replicas: the backend ran as Ray actors
        per = c["per_replica"]
        lost = f", {len(c['losses'])} lost during the run" if c.get("losses") else ""
        t.add_row("replicas", escape(f"{c['replicas']} on {c['nodes']} node(s) (Ray {c['ray_version']}), "
                                     f"{per['cpus']:g} CPU / {per['gpus']:g} GPU / {per['threads']} thread(s) each{lost}"))
    if result.accuracy is not None:
        from mlperf_bert.accuracy.evaluate import describe

        for k, line in enumerate(describe(result.accuracy)):
            t.add_row("accuracy" if k == 0 else "", escape(line))
        t.add_row("accuracy.txt", escape(result.accuracy.line))  # the reference evaluator's line, every digit
    target = getattr(cfg, "accuracy_target", None)
    if target is not None:
        a = result.accuracy
        if a is None:
            verdict = ""
        elif not a.full_dev:  # the target is an F1 over all of dev; a subset's F1 says nothing about it
            verdict = f"  not judged: this run scored {a.questions_total:,} questions, not all of dev"
        else:
            verdict = "  met" if target.met(a.f1) else "  NOT MET"
        t.add_row("target", target.describe() + verdict)
    p = result.performance
    if p is not None:
        t.add_row("performance", f"{p.metric_name}: {p.metric_value:,.2f} {p.metric_unit}"
                                 + (f"  ({p.samples_per_second:,.2f} samples/s)" if p.metric_unit != "samples/s" else ""))
        if p.latency_ms:
            t.add_row("latency", "  ".join(f"p{k:g} {v:.2f} ms" for k, v in sorted(p.latency_ms.items())
                                          if k in (50.0, 90.0, 99.0)))
        verdict = "VALID" if p.valid else "INVALID"
        if cfg.loadgen.rules == "quick":
            verdict += " (quick rules: never valid for submission)"
        t.add_row("result", verdict)
        for reason in p.invalid_reasons:
            t.add_row("", escape(f"- {reason}"))
        for err in p.errors:
            t.add_row("LoadGen error", escape(str(err)[:160]))
    if result.probe:
        t.add_row("probe", f"{result.probe['samples_per_second']:.1f} samples/s before the run (sizing only)")
    mode = "performance" if "performance_settings" in result.info else "accuracy"
    settings = result.info.get(f"{mode}_settings")
    if settings:
        from mlperf_bert.loadgen.settings import HEADLINE_SETTINGS, SOURCE_MLPERF_CONF

        head = HEADLINE_SETTINGS.get(cfg.sut.scenario, ())
        shown = [s for s in settings if s["key"] not in ("scenario", "mode")
                 and (s["key"] in head or s["source"] != SOURCE_MLPERF_CONF)]
        for k, s in enumerate(shown):
            t.add_row(f"LoadGen ({mode})" if k == 0 else "", escape(f"{s['key']} = {s['value']}  ({s['source']})"))
        trace = result.info.get(f"{mode}_trace")
        if trace and mode == "performance":
            t.add_row("trace", escape(("written" if trace["enabled"] else "not written") + f" ({trace['why']})"))
    harness = result.info.get("harness")
    if harness:
        groups: dict[str, list[str]] = {}
        for h in harness["settings"]:
            groups.setdefault(str(h["source"]), []).append(f"{h['key']} = {h['value']}")
        for k, (source, items) in enumerate(groups.items()):
            t.add_row("harness" if k == 0 else "", escape(f"{', '.join(items)}  ({source})"))
        if harness.get("note"):
            t.add_row("", escape(harness["note"]))
        if c is not None:  # replicas: the pool's slots set the SUT's workers, each replica its own threads
            t.add_row("", escape(f"with replicas the SUT runs {c['slots']} workers ({c['replicas']} replicas x "
                                 f"{c['per_replica']['inflight']} in flight) and each replica its own threads "
                                 "(above): the workers and threads here do not apply"))
    t.add_row("run folder", escape(str(result.run_dir)))
    console.print(t)
