"""mlperf_bert: the MLPerf Inference BERT (SQuAD v1.1) benchmark, driven by the MLPerf LoadGen.

Data flow, one package per stage:
``squad`` (dev set -> features) -> ``qsl`` (LoadGen QSL) -> ``sut`` (batcher, SUT) ->
``backends`` (model runtimes) -> ``logs`` (LoadGen settings and log parsing) ->
``accuracy`` (postprocessing, SQuAD v1.1 metric) -> ``report``.
``runner`` is the only module that knows the order.
"""

__version__ = "0.1.0"
