"""What kind of model a path holds, read from the files themselves (never from a guess on the name).

Formats (the names backends declare in ``BackendSpec.model_formats``):

| format | what is on disk |
|---|---|
| ``onnx`` | an ``.onnx`` file, or a model folder whose ``manifest.json`` names one |
| ``hf`` | a folder with ``config.json`` and ``model.safetensors`` / ``pytorch_model.bin`` (Hugging Face) |
| ``pytorch`` | a state_dict file (``model.pytorch``, ``.bin``, ``.safetensors``) with a ``(bert_)config.json`` beside it |
| ``tf-frozen`` | a frozen GraphDef ``.pb`` file |
| ``tf-saved-model`` | a SavedModel folder (``saved_model.pb``), or an ``export-tf`` folder holding ``saved_model/`` |
| ``tf-checkpoint`` | a TF checkpoint prefix (``model.ckpt-5474`` with ``.index`` and ``.data-*`` beside it) |
"""

from __future__ import annotations

from pathlib import Path

from mlperf_bert.errors import ModelError

FORMATS = ("onnx", "hf", "pytorch", "tf-frozen", "tf-saved-model", "tf-checkpoint")


def detect_format(path: Path) -> str:
    """The format of the model at ``path`` (one of ``FORMATS``).

    Raises:
        ModelError: nothing there, or nothing we recognise (the message says what was looked for).
    """
    path = Path(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return "onnx"
        if suffix == ".pb":
            return "tf-frozen"
        if suffix in (".pytorch", ".bin", ".safetensors", ".pt"):
            return "pytorch"
        raise ModelError(f"{path}: not a model file we know (.onnx, .pb, .pytorch/.bin/.safetensors)")
    if path.is_dir():
        from mlperf_bert.models.artifact import read_manifest

        manifest = read_manifest(path)
        if manifest is not None and manifest.format == "onnx":
            return "onnx"
        if (path / "config.json").is_file() and any((path / n).is_file() for n in
                                                    ("model.safetensors", "pytorch_model.bin", "model.pytorch")):
            return "hf"
        if (path / "saved_model.pb").is_file() or (path / "saved_model" / "saved_model.pb").is_file():
            return "tf-saved-model"
        raise ModelError(f"{path}: a folder without a model we know (Hugging Face config.json + weights, "
                         "a SavedModel, or a manifest.json naming an ONNX file)")
    if Path(str(path) + ".index").is_file():
        return "tf-checkpoint"
    raise ModelError(f"model not found: {path}")


def model_file(path: Path) -> Path:
    """The file to open for ``path``: itself, or for a model folder the file its manifest names."""
    path = Path(path)
    if path.is_dir():
        from mlperf_bert.models.artifact import read_manifest

        manifest = read_manifest(path)
        if manifest is not None and manifest.model_file:
            return path / manifest.model_file
    return path


def read_onnx(path: Path, *, external_data: bool = True):
    """``(onnx.ModelProto, graph_inputs)`` of an ONNX file: ``graph_inputs`` are the graph's inputs that are
    not initializers (weights), in graph order (list of str).

    Args:
        external_data: also load tensors stored beside the file (False: the graph and its names only).

    Raises:
        ModelError: no file there, or not a readable ONNX model (truncated, say); one line naming the file.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: ONNX model not found")
    try:
        model = onnx.load(str(path), load_external_data=external_data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and onnx's own errors
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"onnx cannot load {path} (truncated or not an ONNX model?): {first}") from None
    weights = {i.name for i in model.graph.initializer}
    return model, [i.name for i in model.graph.input if i.name not in weights]
