"""int8 BERT the MLPerf way, calibrated only on the 100 listed dev features (docs/workload.md#int8-reference).

- ``calibration``: read ``bert-calibration.txt`` strictly; the listed features as model inputs.
- ``ptq``: ONNX Runtime static QDQ quantization (symmetric, per-tensor int8; percentile/entropy/minmax).
- ``qat``: PyTorch BERT with fake quantizers at MLPerf's positions; calibration; quantization-aware
  fine-tuning (the loop of ``train.finetune``).
- ``export``: the official fake-quant ONNX form and the fast QDQ form ORT runs with integer kernels.
- ``manifest``: ``manifest.json`` next to every quantized model.
"""
