"""One module per CLI subcommand; each exposes ``register(subparsers)``. See ``mlperf_bert.cli``."""
