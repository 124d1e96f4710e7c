"""Model zoo: the XLM-R encoders of the study, their sizes, the settings each needs, and a GPU-hour estimate.

Every entry is data (:class:`ModelSpec`): Hub id and revision, architecture sizes, parameter counts, and the
training settings the size requires on 80 GB GPUs. ``tiny-xlmr`` is built from a config (no download) for
tests and smoke runs. :func:`estimate_gpu_hours` turns a token budget into GPU hours from
FLOPs = 6 x parameters x tokens (see its docstring for the assumptions); the grid's dry run uses it.

Parameter counts are those of the bare encoder (``XLMRobertaModel`` / ``XLMRobertaXLModel`` without the
pooler), counted from the configs with ``transformers`` on the meta device; ``tests/test_xtreme_zoo.py``
recounts them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from xlt_utils.errors import XLTError, unknown

# Peak dense BF16 tensor throughput of one GPU, TFLOP/s, without sparsity (the datasheets print the 2:4-sparsity
# figure; dense is half of it). Sources: NVIDIA H100 Tensor Core GPU datasheet (SXM 1,979 / PCIe 1,513 TFLOPS
# sparse), NVIDIA H200 Tensor Core GPU datasheet (SXM 1,979 / NVL 1,671 sparse), NVIDIA A100 Tensor Core GPU
# datasheet (312 dense), NVIDIA L40S datasheet (733 sparse).
GPU_TFLOPS = {"h100-sxm": 989.0, "h100-pcie": 756.0, "h200": 989.0, "h200-nvl": 835.0, "a100": 312.0,
              "l40s": 362.0}
DEFAULT_GPU_TFLOPS = GPU_TFLOPS["h100-sxm"]
# Model FLOPs utilisation assumed for encoder fine-tuning with dynamic padding (typical: 0.3-0.45).
DEFAULT_MFU = 0.35
# Bytes of training state per parameter with AdamW and bf16 autocast: fp32 weights 4 + grads 4 + moments 8.
TRAIN_BYTES_PER_PARAM = 16
GPU_MEMORY_GB = 80.0


@dataclass(frozen=True)
class ModelSpec:
    """One encoder of the zoo.

    Attributes:
        name: zoo key (``xlmr-large``).
        hub_id: Hugging Face Hub id; ``None`` for config-built models.
        revision: commit to load; ``pinned`` says whether it is a commit (else a branch, see docs/xtreme.md).
        model_type: ``xlm-roberta`` or ``xlm-roberta-xl`` (pre-LayerNorm XL/XXL architecture).
        num_layers, hidden_size, num_heads, intermediate_size, vocab_size, max_position_embeddings: sizes.
        params: parameters of the bare encoder (embeddings + layers, no pooler, no head).
        embedding_params: of which in the embeddings (word, position, type, LayerNorm).
        dtype: training precision (``bf16`` autocast on GPU; fp32 master weights).
        gradient_checkpointing: recompute activations in the backward pass (XL and up).
        strategy: ``single`` (one GPU) or ``fsdp`` (sharded data parallel: weights, grads, optimizer state).
        min_gpus: the fewest 80 GB GPUs that hold the training state (``TRAIN_BYTES_PER_PARAM`` bytes/param).
        notes: what the settings are for.
    """

    name: str
    hub_id: str | None
    revision: str | None
    pinned: bool
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    params: int
    embedding_params: int
    dtype: str = "bf16"
    gradient_checkpointing: bool = False
    strategy: str = "single"
    min_gpus: int = 1
    notes: str = ""
    extra_config: dict[str, Any] = field(default_factory=dict)

    @property
    def non_embedding_params(self) -> int:
        """Parameters that take part in matrix multiplies per token (the layers)."""
        return self.params - self.embedding_params

    def config(self, **overrides: Any) -> Any:
        """The ``transformers`` config of this architecture, built locally (no download)."""
        from transformers import XLMRobertaConfig, XLMRobertaXLConfig

        cls = XLMRobertaXLConfig if self.model_type == "xlm-roberta-xl" else XLMRobertaConfig
        kwargs: dict[str, Any] = dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            layer_norm_eps=1e-5,
            **self.extra_config,
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        """Safe loading arguments for ``AutoModel*.from_pretrained(spec.hub_id, **kwargs)``: the revision,
        safetensors only, no remote code."""
        if self.hub_id is None:
            raise XLTError(
                f"model {self.name!r} is built from a config (spec.config()), not loaded from the Hub"
            )
        return {"revision": self.revision, "use_safetensors": True, "trust_remote_code": False}

    def train_state_gb(self) -> float:
        """GB of weights + grads + AdamW moments (fp32) for training; activations not included."""
        return self.params * TRAIN_BYTES_PER_PARAM / 1e9

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["non_embedding_params"] = self.non_embedding_params
        d["train_state_gb"] = round(self.train_state_gb(), 1)
        return d


MODELS: dict[str, ModelSpec] = {
    "xlmr-base": ModelSpec(
        name="xlmr-base",
        hub_id="FacebookAI/xlm-roberta-base",
        revision="e73636d4f797dec63c3081bb6ed5c7b0bb3f2089",
        pinned=True,
        model_type="xlm-roberta",
        num_layers=12,
        hidden_size=768,
        num_heads=12,
        intermediate_size=3072,
        vocab_size=250002,
        max_position_embeddings=514,
        params=277_453_056,
        embedding_params=192_398_592,
        notes="One GPU; bf16 autocast. 69% of the parameters are the embedding matrix.",
    ),
    "xlmr-large": ModelSpec(
        name="xlmr-large",
        hub_id="FacebookAI/xlm-roberta-large",
        revision="c23d21b0620b635a76227c604d44e43a9f0ee389",
        pinned=True,
        model_type="xlm-roberta",
        num_layers=24,
        hidden_size=1024,
        num_heads=16,
        intermediate_size=4096,
        vocab_size=250002,
        max_position_embeddings=514,
        params=558_840_832,
        embedding_params=256_531_456,
        notes="The paper's model. One GPU; bf16 autocast; ~9 GB training state.",
    ),
    "xlmr-xl": ModelSpec(
        name="xlmr-xl",
        hub_id="facebook/xlm-roberta-xl",
        revision="aa5d120255845efeebc9b7f42822a1dd0f9ece9d",
        pinned=True,
        model_type="xlm-roberta-xl",
        num_layers=36,
        hidden_size=2560,
        num_heads=32,
        intermediate_size=10240,
        vocab_size=250880,
        max_position_embeddings=514,
        params=3_475_929_600,
        embedding_params=643_571_200,
        gradient_checkpointing=True,
        notes="~56 GB of training state fits one 80 GB GPU only with gradient checkpointing and bf16 "
        "autocast; use FSDP over 2+ GPUs for long sequences or larger batches. jiant cannot run it.",
    ),
    "xlmr-xxl": ModelSpec(
        name="xlmr-xxl",
        hub_id="facebook/xlm-roberta-xxl",
        revision="03e0fb540c3c9afd4bdda0072e7cb82d2eafd060",
        pinned=True,
        model_type="xlm-roberta-xl",
        num_layers=48,
        hidden_size=4096,
        num_heads=32,
        intermediate_size=16384,
        vocab_size=250880,
        max_position_embeddings=514,
        params=10_695_954_432,
        embedding_params=1_029_713_920,
        gradient_checkpointing=True,
        strategy="fsdp",
        min_gpus=4,
        notes="~171 GB of training state: FSDP full sharding over at least 4 x 80 GB GPUs (accelerate), "
        "gradient checkpointing, bf16 autocast. Inference alone fits one GPU in bf16 (~21 GB).",
    ),
    "tiny-xlmr": ModelSpec(
        name="tiny-xlmr",
        hub_id=None,
        revision=None,
        pinned=False,
        model_type="xlm-roberta",
        num_layers=2,
        hidden_size=32,
        num_heads=2,
        intermediate_size=64,
        vocab_size=1000,
        max_position_embeddings=514,
        params=65_632,
        embedding_params=48_544,
        dtype="fp32",
        notes="Built from a config for tests (xlt_utils.models.tiny_xlmr_config sizes); pass vocab_size= to "
        "spec.config() to match a tokenizer. Counts are for vocab_size=1000.",
    ),
}
# Hub-id aliases, so a study may name a model by either.
ALIASES = {spec.hub_id: name for name, spec in MODELS.items() if spec.hub_id}
ALIASES.update({"xlm-roberta-base": "xlmr-base", "xlm-roberta-large": "xlmr-large", "tiny": "tiny-xlmr"})


def get_model(name: str | ModelSpec) -> ModelSpec:
    """A zoo entry by name or Hub id (``xlmr-large`` or ``FacebookAI/xlm-roberta-large``)."""
    if isinstance(name, ModelSpec):
        return name
    key = ALIASES.get(name, name)
    if key not in MODELS:
        raise unknown("model", name, MODELS)
    return MODELS[key]


def list_models() -> list[ModelSpec]:
    """Every zoo entry, smallest first."""
    return sorted(MODELS.values(), key=lambda s: s.params)


def training_flops(
    model: str | ModelSpec,
    tokens: float,
    *,
    training: bool = True,
    seq_len: int | None = None,
    params: str = "non_embedding",
) -> float:
    """FLOPs to process ``tokens`` tokens: ``6 N T`` for training (forward 2NT + backward 4NT), ``2 N T`` for
    inference, plus the attention-score term ``12 L s h`` (``4 L s h`` inference) per token when ``seq_len``
    is given. ``N`` is the non-embedding parameter count by default (embedding lookups cost no multiplies);
    ``params="total"`` uses every parameter (an upper bound; 3x too high for XLM-R base)."""
    spec = get_model(model)
    if tokens < 0:
        raise XLTError(f"tokens must be >= 0, got {tokens}")
    if params not in ("non_embedding", "total"):
        raise XLTError(f"params must be 'non_embedding' or 'total', got {params!r}")
    n = spec.non_embedding_params if params == "non_embedding" else spec.params
    per_token = (6 if training else 2) * n
    if seq_len:
        per_token += (12 if training else 4) * spec.num_layers * seq_len * spec.hidden_size
    return float(per_token) * float(tokens)


def estimate_gpu_hours(
    model: str | ModelSpec,
    tokens: float,
    gpu_tflops: float = DEFAULT_GPU_TFLOPS,
    mfu: float = DEFAULT_MFU,
    *,
    training: bool = True,
    seq_len: int | None = None,
    params: str = "non_embedding",
) -> float:
    """GPU hours to train on (or encode) ``tokens`` tokens.

    hours = FLOPs / (gpu_tflops * 1e12 * mfu) / 3600, with FLOPs from :func:`training_flops`
    (6 x parameters x tokens for training).

    Assumptions (docs/xtreme.md): ``tokens`` counts every processed position including padding (examples x
    padded length x epochs; dynamic padding makes it smaller than examples x max length); parameters are
    the non-embedding ones; attention-score FLOPs are ignored unless ``seq_len`` is given (they add s/(6h):
    about 8% at 512 tokens for XLM-R large); evaluation passes, data loading and checkpointing are not
    counted; ``mfu`` is the fraction of peak throughput achieved (0.35 default for bf16 fine-tuning).

    Args:
        model: zoo name, Hub id or spec.
        tokens: token positions processed.
        gpu_tflops: peak dense bf16 TFLOP/s of one GPU (default H100 SXM, 989; see :data:`GPU_TFLOPS`).
        mfu: model FLOPs utilisation in (0, 1].
        training: forward + backward (6N per token) or forward only (2N).
        seq_len: add the attention-score FLOPs for this sequence length.
        params: ``non_embedding`` (default) or ``total``.
    """
    if gpu_tflops <= 0:
        raise XLTError(f"gpu_tflops must be > 0, got {gpu_tflops}")
    if not 0 < mfu <= 1:
        raise XLTError(f"mfu must be in (0, 1], got {mfu}")
    flops = training_flops(model, tokens, training=training, seq_len=seq_len, params=params)
    return flops / (gpu_tflops * 1e12 * mfu) / 3600.0
