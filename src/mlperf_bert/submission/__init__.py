"""Submission-ready output: benchmarks and accuracy targets (``benchmark``), the submission tree
(``tree``), our checker of the MLPerf v1.0 rules (``checker``), compliance TEST01/TEST05 (``compliance``)
and the system description (``system``)."""
