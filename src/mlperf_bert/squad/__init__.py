"""SQuAD v1.1 reading and preprocessing (examples -> 384-token features), exactly as the MLPerf reference.

Modules: ``dataset`` (JSON -> ``Example``), ``tokenization`` (WordPiece on HF ``tokenizers``),
``features`` (``Example`` -> ``Features``), ``cache`` (``load_features``: npz cache keyed by content).
"""
