"""A random-weight BERT QA model of any shape (default BERT-Large) as a Hugging Face folder, for speed work
without the official weights.

The speed of BERT depends on its shape and the inputs' lengths, not on the weights' values, so a
random-weight BERT-Large (24 layers, hidden 1024, 16 heads, intermediate 4096, vocab 30,522;
docs/workload.md#model) run over the real SQuAD dev features measures what the official model would
(its F1 is meaningless: about 0). The folder is written through the converter's own path
(``convert.names`` tensor names and shapes, ``tf_to_torch.write_hf_dir``, ``atomic_output_dir``), so it
loads strictly in the pytorch backend and exports to ONNX like a converted checkpoint.

Initialisation follows BERT's (Devlin et al. 2019, ``modeling.py`` ``initializer_range`` 0.02): every
matrix and embedding table ~ N(0, 0.02) clipped at 2 standard deviations (std then 0.0192), biases 0,
LayerNorm gamma 1 and beta 0; the padding row (id 0) of the word embeddings is 0 as in Hugging Face's init.
Values come from NumPy's PCG64 generator seeded with ``seed``, one stream per tensor in ``names.weight_names`` order, so the
same seed gives the same bytes on every machine and NumPy version that keeps PCG64's stream
(``fileio.fingerprint`` of the folder is then the same too, and so are the caches keyed by it).

Example:
    >>> report = build_random_bert(Path("bert-large-random"))        # ~1.34 GB, a few seconds
    >>> report.parameters
    334094338
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlperf_bert.convert import atomic_output_dir, check_output_dir
from mlperf_bert.convert.names import BERT_LARGE, BertShape, hf_shapes, weight_names
from mlperf_bert.errors import ConfigError

#: Standard deviation of BERT's truncated-normal initialiser (``initializer_range``, BERT config).
INIT_STD = 0.02
#: What ``conversion.json`` says the folder is (``mlperf-bert models`` and people read it).
KIND = "random-weight BERT QA model (speed measurements only; its F1 is meaningless)"


@dataclass(frozen=True)
class RandomBertReport:
    """What ``build_random_bert`` wrote.

    Attributes:
        out_dir: the Hugging Face folder (``config.json``, ``model.safetensors``, ``conversion.json``).
        shape: the architecture.
        seed: the generator seed.
        tensors: number of tensors (``16 * layers + 7``; 391 for BERT-Large).
        parameters: number of parameters (334,094,338 for BERT-Large with the QA head, no pooler).
    """

    out_dir: Path
    shape: BertShape
    seed: int
    tensors: int
    parameters: int


def check_shape(shape: BertShape) -> BertShape:
    """``shape`` when it describes a BERT; else ConfigError naming the bad size."""
    for field in ("num_layers", "hidden", "heads", "intermediate", "vocab", "max_positions", "type_vocab"):
        if getattr(shape, field) < 1:
            raise ConfigError(f"random BERT: {field} must be >= 1, got {getattr(shape, field)}")
    if shape.hidden % shape.heads:
        raise ConfigError(f"random BERT: hidden size {shape.hidden} is not a multiple of {shape.heads} heads")
    if shape.max_positions < 384:
        raise ConfigError(f"random BERT: max_positions {shape.max_positions} < 384, the feature length")
    return shape


def parameter_count(shape: BertShape) -> int:
    """Parameters of BERT + QA head (no pooler) for ``shape``, from the converter's shape table."""
    return int(sum(int(np.prod(s)) for s in hf_shapes(check_shape(shape)).values()))


def random_state(shape: BertShape = BERT_LARGE, seed: int = 0, std: float = INIT_STD) -> dict[str, np.ndarray]:
    """Hugging Face state_dict key -> float32 array, BERT-initialised (see the module docstring).

    ``std`` other than 0.02 makes a model whose attention is sharper (tests use it so that masking errors
    move the logits far more than float rounding does); the speed does not depend on it.

    Exactly the names and shapes of ``names.hf_shapes(shape)``: what the pytorch backend's strict load
    expects. Memory: 4 bytes per parameter (1.34 GB for BERT-Large).
    """
    shapes = hf_shapes(check_shape(shape))
    streams = np.random.SeedSequence(seed).spawn(len(shapes))
    state: dict[str, np.ndarray] = {}
    for name, ss in zip((n.hf for n in weight_names(shape.num_layers)), streams):
        dims = shapes[name]
        if name.endswith("LayerNorm.weight"):
            arr = np.ones(dims, np.float32)
        elif len(dims) == 1:  # biases, LayerNorm beta
            arr = np.zeros(dims, np.float32)
        else:
            rng = np.random.Generator(np.random.PCG64(ss))
            arr = rng.standard_normal(dims, dtype=np.float32)
            np.clip(arr, -2.0, 2.0, out=arr)  # clipped at 2 sigma (TF's initializer redraws; the shape is what matters)
            arr *= std
            if name == "bert.embeddings.word_embeddings.weight":
                arr[0] = 0.0  # pad_token_id 0
        state[name] = arr
    return state


def build_random_bert(out_dir: Path, shape: BertShape = BERT_LARGE, *, seed: int = 0, std: float = INIT_STD,
                      overwrite: bool = False) -> RandomBertReport:
    """Write a random-weight ``BertForQuestionAnswering`` folder of ``shape`` (default BERT-Large).

    The folder holds ``config.json`` (``shape.hf_config()``), ``model.safetensors`` and ``conversion.json``
    (kind, shape, seed, parameter count; no timestamp, so the folder's fingerprint depends on the seed and
    shape alone). It appears only when complete.

    Raises:
        ConfigError: a bad shape, or ``out_dir`` exists and is not empty (without ``overwrite``); raised
            before any work.
    """
    from mlperf_bert.convert.tf_to_torch import write_hf_dir

    check_shape(shape)
    check_output_dir(Path(out_dir), overwrite=overwrite)
    if not std > 0:
        raise ConfigError(f"random BERT: std must be > 0, got {std}")
    state = random_state(shape, seed, std)
    params = int(sum(a.size for a in state.values()))
    record = {"kind": KIND, "seed": seed, "init": f"normal, std {std}, clipped at 2 sigma; biases 0; "
              "LayerNorm 1/0; word-embedding row 0 zero; numpy PCG64, one SeedSequence child per tensor",
              "shape": {"num_layers": shape.num_layers, "hidden": shape.hidden, "heads": shape.heads,
                        "intermediate": shape.intermediate, "vocab": shape.vocab},
              "tensors": len(state), "parameters": params}
    with atomic_output_dir(Path(out_dir), overwrite=overwrite) as tmp:
        write_hf_dir(tmp, shape, state, record)
    return RandomBertReport(Path(out_dir), shape, seed, len(state), params)


def is_random_model(path: Path) -> bool:
    """Whether ``path`` is (or is in) a folder written by ``build_random_bert``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    try:
        return json.loads((folder / "conversion.json").read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False
