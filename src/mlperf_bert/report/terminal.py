"""The short summary printed after every run (rich table on a terminal, plain text otherwise)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_run_summary(result, cfg, console: Console | None = None) -> None:
    """Print F1/EM, the performance metric, VALID/INVALID and why, and the run folder.

    Args:
        result: ``runner.RunResult``.
        cfg: ``runner.RunConfig`` of that run.
    """
    console = console or Console()
    t = Table(title=f"mlperf-bert: {cfg.backend.name} / {cfg.sut.scenario}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("model", str(cfg.backend.model))
    if result.accuracy is not None:
        a = result.accuracy
        t.add_row("accuracy", f"F1 {a.f1:.3f}  EM {a.exact_match:.3f}  "
                              f"({a.questions_scored:,} of {a.questions_total:,} questions)")
    target = getattr(cfg, "accuracy_target", None)
    if target is not None:
        met = "" if result.accuracy is None else ("  met" if target.met(result.accuracy.f1) else "  NOT MET")
        t.add_row("target", target.describe() + met)
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
            t.add_row("", f"- {reason}")
        for err in p.errors:
            t.add_row("LoadGen error", str(err)[:160])
    if result.probe:
        t.add_row("probe", f"{result.probe['samples_per_second']:.1f} samples/s before the run (sizing only)")
    t.add_row("run folder", str(result.run_dir))
    console.print(t)
