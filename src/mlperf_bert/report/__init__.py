"""Human-facing output: terminal summaries (and, later, HTML reports)."""
