"""SQuAD v1.1 reading and preprocessing (examples -> 384-token features), exactly as the MLPerf reference."""
