"""Post-training static int8 quantization of a BERT QA ONNX model with ONNX Runtime (``--method ptq``).

Steps (ONNX Runtime's recommended flow):

1. ``quant_pre_process``: symbolic shape inference (``auto_merge``, needed for BERT's dynamic batch and
   sequence axes) and ORT's basic graph optimizations, so every tensor to quantize has a known type.
2. Calibration on the MLPerf calibration features only (``calibration.py``; docs/workload.md#calibration-list), one
   feature per batch at its real length. ORT's histogram calibrators need equal shapes inside one collection,
   so each feature is collected separately (``CalibStridedMinMax=1``: despite its name it drives every
   calibrator) and merged into the running histograms.
3. ``quantize_static`` in QDQ format, int8, symmetric (``ActivationSymmetric``/``WeightSymmetric``),
   per-tensor, on the MatMul nodes: both inputs of every encoder MatMul are quantized, i.e. the
   embedding/layer outputs feeding Q/K/V, the Q/K/V weights, q and k of the score matmul, the softmax
   output and v of the context matmul, the context, the intermediate input and the GELU output with their
   weights: MLPerf's positions that are executed as integer GEMMs. MatMul outputs are not quantized
   (``OpTypesToExcludeOutputQuantization``) and the QA head stays fp32, as in the MLPerf model.

Activations are stored as uint8 with zero point 128 by default (``activation_type="uint8"``): the same
symmetric grid as int8 with zero point 0 (shifted by 128), and the form ONNX Runtime's x86 kernels
(MatMulIntegerToFloat, QLinearMatMul, u8s8) take directly. With int8 activations ORT converts Q/DQ
pairs to uint8 itself, but not those whose DequantizeLinear also feeds the residual Add, which then stay
fp32 MatMuls: the int8 setting is kept for other runtimes (TensorRT, ARM), not for speed here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlperf_bert.errors import ConfigError, ModelError
from mlperf_bert.quant.calibration import CalibrationList, calibration_inputs
from mlperf_bert.models.artifact import Manifest
from mlperf_bert.quant.manifest import build_manifest, write_manifest
from mlperf_bert.squad.types import Features

METHODS = ("percentile", "entropy", "minmax")
ACTIVATION_TYPES = ("uint8", "int8")
MODEL_FILE = "model.onnx"
RANGES_FILE = "calibration_ranges.json"
#: Input-name conventions of BERT QA ONNX files (backends.onnxruntime.INPUT_CONVENTIONS).
BERT_INPUTS = (("input_ids", "input_mask", "segment_ids"), ("input_ids", "attention_mask", "token_type_ids"))


@dataclass(frozen=True)
class PtqConfig:
    """Post-training quantization settings.

    Attributes:
        method: calibration: ``percentile`` (default), ``entropy`` (KL divergence, TensorRT-style) or
            ``minmax``.
        percentile: for ``percentile``: 99.999 by default. MLPerf's recipe uses 99.99 and then
            quantization-aware fine-tuning; without the fine-tuning, clipping at 99.99 costs more F1
            than the coarser step of 99.999 (measured on the small model, see the README's int8 table).
        activation_type: ``uint8`` (zero point 128, symmetric; default, see the module docstring) or
            ``int8`` (zero point 0).
        quantize_qa_head: also quantize the final hidden->2 layer (MLPerf leaves it fp32).
        exclude: node-name substrings to keep in fp32 (e.g. ``layer.5/output/dense``), for
            sensitivity studies; empty for the MLPerf recipe.
        smooth_alpha: apply SmoothQuant with this migration strength before quantizing (``smooth.py``);
            default 0.4, the best of 0.4 / 0.5 / 0.6 at percentile 99.999 on the small model (the paper
            uses 0.5); None = off (the plain MLPerf positions). Quantization stays symmetric per-tensor.
    """

    method: str = "percentile"
    percentile: float = 99.999
    activation_type: str = "uint8"
    quantize_qa_head: bool = False
    exclude: tuple[str, ...] = ()
    smooth_alpha: float | None = 0.4

    def __post_init__(self) -> None:
        if self.smooth_alpha is not None and not 0.0 <= self.smooth_alpha <= 1.0:
            raise ConfigError(f"--smooth-alpha must be in [0, 1], got {self.smooth_alpha}")
        if self.method not in METHODS:
            raise ConfigError(f"--calibration-method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"--percentile must be in (0, 100], got {self.percentile}")
        if self.activation_type not in ACTIVATION_TYPES:
            raise ConfigError(f"--activation-type must be one of {', '.join(ACTIVATION_TYPES)}, "
                              f"got {self.activation_type!r}")


def check_bert_onnx(path: Path):
    """Load an ONNX file and check it is a BERT QA model: three int inputs of a known convention and
    start/end logits out. Returns (ModelProto, input names in our order).

    Raises:
        ModelError: missing/unreadable file, or a graph that is not a BERT QA model (names what it has).
    """
    from mlperf_bert.models.formats import read_onnx

    model, inputs = read_onnx(path)
    for convention in BERT_INPUTS:
        if set(convention) == set(inputs):
            break
    else:
        raise ModelError(f"{path} is not a BERT QA model: its inputs are {inputs}; expected "
                         + " or ".join("/".join(c) for c in BERT_INPUTS))
    if len(model.graph.output) not in (1, 2):
        raise ModelError(f"{path} is not a BERT QA model: {len(model.graph.output)} outputs; expected start/end "
                         "logits")
    if any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        raise ModelError(f"{path} is already quantized (it has QuantizeLinear nodes); pass the fp32 model")
    return model, convention


class _FeatureReader:
    """ORT ``CalibrationDataReader`` over calibration features; ``set_range`` selects the ones to yield."""

    def __init__(self, features: Features, indices: np.ndarray, names: tuple[str, str, str]) -> None:
        self.data = [dict(zip(names, arrays)) for arrays in calibration_inputs(features, indices)]
        self._it = iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self.data[start_index:end_index])

    def get_next(self) -> dict | None:
        return next(self._it, None)


def quantize_ptq(fp32_model: Path, out_dir: Path, features: Features, calibration: CalibrationList,
                 cfg: PtqConfig = PtqConfig(), source: Path | None = None) -> "Manifest":
    """Quantize an fp32 BERT QA ONNX model to int8 QDQ, calibrated on the listed features.

    Args:
        fp32_model: fp32 ONNX (official names or ours; see ``check_bert_onnx``).
        out_dir: receives ``model.onnx``, ``calibration_ranges.json`` (ORT's per-tensor ranges) and
            ``manifest.json``.
        features: the dev features the calibration list indexes (10,833).
        calibration: the calibration list (``read_calibration_list``).
        cfg: method and options.
        source: the model the user gave (e.g. the PyTorch folder exported to ``fp32_model``), for the
            manifest's fingerprint; default ``fp32_model``.

    Returns:
        the manifest (also written to ``out_dir/manifest.json``).

    Raises:
        ModelError: not a BERT QA ONNX model, or already quantized.
        DataError: calibration indices outside ``features``.
    """
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from mlperf_bert.quant.calibration import check_indices
    from mlperf_bert.quant.export import qdq_counts

    model, names = check_bert_onnx(fp32_model)
    indices = check_indices(calibration.indices, len(features), f"calibration list {calibration.path}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    method = {"percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy,
              "minmax": CalibrationMethod.MinMax}[cfg.method]
    act_type = QuantType.QUInt8 if cfg.activation_type == "uint8" else QuantType.QInt8
    with tempfile.TemporaryDirectory(prefix="mlperf-bert-ptq-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(fp32_model), str(pre), auto_merge=True)
        import onnx

        pre_model = onnx.load(str(pre))
        exclude = [n.name for n in pre_model.graph.node
                   if n.op_type == "MatMul" and any(x in n.name for x in cfg.exclude)]
        head = [n.name for n in pre_model.graph.node if n.op_type == "MatMul" and "qa_outputs" in n.name]
        if not cfg.quantize_qa_head:
            if not head:  # the head is the last MatMul before the outputs
                head = [[n.name for n in pre_model.graph.node if n.op_type == "MatMul"][-1]]
            exclude += head
        reader = _FeatureReader(features, indices, names)
        smoothed = []
        if cfg.smooth_alpha is not None:
            from mlperf_bert.quant.smooth import smooth_model

            smoothed = smooth_model(pre_model, reader.data, cfg.smooth_alpha, exclude=set(exclude))
            onnx.save(pre_model, str(pre))
        ranges = Path(tmp) / RANGES_FILE
        extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "CalibStridedMinMax": 1,
                 "CalibTensorRangeSymmetric": True, "OpTypesToExcludeOutputQuantization": ["MatMul"]}
        if cfg.method == "percentile":
            extra["CalibPercentile"] = cfg.percentile
        out_tmp = Path(tmp) / MODEL_FILE
        quiet = io.StringIO()
        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # ORT logs a pre-processing hint at WARNING
        try:
            with contextlib.redirect_stdout(quiet):  # ORT's calibrators print a line per sample
                quantize_static(str(pre), str(out_tmp), reader, quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=["MatMul"], per_channel=False, reduce_range=False,
                                activation_type=act_type, weight_type=QuantType.QInt8,
                                nodes_to_exclude=sorted(set(exclude)), calibrate_method=method,
                                calibration_cache_path=str(ranges), extra_options=extra)
        finally:
            logging.getLogger().setLevel(level)
        shutil.move(str(out_tmp), out_dir / MODEL_FILE)
        if ranges.is_file():
            shutil.move(str(ranges), out_dir / RANGES_FILE)
    counts = qdq_counts(onnx.load(str(out_dir / MODEL_FILE)))
    manifest = build_manifest(
        "ptq", Path(source or fp32_model), calibration,
        settings={**asdict(cfg), "format": "QDQ", "op_types": ["MatMul"], "weights": "int8 symmetric per-tensor",
                  "activations": f"{cfg.activation_type} symmetric per-tensor", "fp32_nodes": sorted(set(exclude)),
                  "calibration_batch": "1 feature per batch at its real length",
                  "smoothquant": None if cfg.smooth_alpha is None else {
                      "alpha": cfg.smooth_alpha, "activations": len(smoothed),
                      "largest_activation_range": round(max((t.act_amax for t in smoothed), default=0.0), 3),
                      "largest_activation_range_after": round(max((t.act_amax_after for t in smoothed),
                                                                  default=0.0), 3)},
                  "onnxruntime": onnxruntime.__version__},
        results={"model": MODEL_FILE, "inputs": list(names), "calibration_ranges": RANGES_FILE, **counts},
        model_file=MODEL_FILE, input_names=tuple(names),
    )
    write_manifest(out_dir, manifest)
    return manifest
