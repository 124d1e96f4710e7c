"""Model zoo: XLM-R sizes and settings, parameter counts recounted from configs, GPU-hour estimates."""

from __future__ import annotations

import math

import pytest
import torch

from xlt_utils import zoo
from xlt_utils.errors import XLTError


def test_entries_and_settings():
    names = {s.name for s in zoo.list_models()}
    assert names == {"tiny-xlmr", "xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl"}
    hub = {s.hub_id for s in zoo.list_models() if s.hub_id}
    assert hub == {
        "FacebookAI/xlm-roberta-base",
        "FacebookAI/xlm-roberta-large",
        "facebook/xlm-roberta-xl",
        "facebook/xlm-roberta-xxl",
    }
    for s in zoo.list_models():
        if s.hub_id:
            assert s.dtype == "bf16" and len(s.revision) == 40 and s.pinned
            kw = s.from_pretrained_kwargs()
            assert kw["use_safetensors"] and not kw["trust_remote_code"] and kw["revision"] == s.revision
    assert zoo.get_model("xlmr-xl").gradient_checkpointing
    xxl = zoo.get_model("facebook/xlm-roberta-xxl")
    assert xxl.strategy == "fsdp" and xxl.min_gpus * zoo.GPU_MEMORY_GB >= xxl.train_state_gb()
    assert zoo.get_model("xlmr-large").train_state_gb() < zoo.GPU_MEMORY_GB
    assert [s.name for s in zoo.list_models()] == [
        "tiny-xlmr",
        "xlmr-base",
        "xlmr-large",
        "xlmr-xl",
        "xlmr-xxl",
    ]
    with pytest.raises(XLTError, match="unknown model 'xlmr-huge'; valid: .*xlmr-large"):
        zoo.get_model("xlmr-huge")
    with pytest.raises(XLTError, match="built from a config"):
        zoo.get_model("tiny-xlmr").from_pretrained_kwargs()


@pytest.mark.parametrize("name", ["tiny-xlmr", "xlmr-base", "xlmr-large", "xlmr-xl", "xlmr-xxl"])
def test_parameter_counts_match_the_architecture(name):
    from transformers import AutoModel

    spec = zoo.get_model(name)
    with torch.device("meta"):
        model = AutoModel.from_config(spec.config(), add_pooling_layer=False)
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for n, p in model.named_parameters() if n.startswith("embeddings"))
    assert (total, emb) == (spec.params, spec.embedding_params)
    assert model.config.num_hidden_layers == spec.num_layers


def test_tiny_xlmr_builds_and_runs_on_cpu():
    from transformers import XLMRobertaModel

    spec = zoo.get_model("tiny")
    model = XLMRobertaModel(spec.config(vocab_size=50), add_pooling_layer=False)
    out = model(input_ids=torch.tensor([[0, 5, 6, 2]]), output_hidden_states=True)
    assert out.last_hidden_state.shape == (1, 4, spec.hidden_size)
    assert len(out.hidden_states) == spec.num_layers + 1


def test_gpu_hour_estimate():
    large = zoo.get_model("xlmr-large")
    tokens = 1e9
    flops = 6 * large.non_embedding_params * tokens
    assert math.isclose(zoo.training_flops("xlmr-large", tokens), flops)
    hours = zoo.estimate_gpu_hours("xlmr-large", tokens, gpu_tflops=989.0, mfu=0.35)
    assert math.isclose(hours, flops / (989e12 * 0.35) / 3600)
    assert math.isclose(hours, 1.4556, rel_tol=1e-3)
    assert math.isclose(zoo.estimate_gpu_hours(large, tokens, training=False) * 3, hours)
    assert zoo.estimate_gpu_hours(large, tokens, params="total") > hours
    with_attn = zoo.estimate_gpu_hours(large, tokens, seq_len=512)
    expected = 1 + 12 * large.num_layers * 512 * large.hidden_size / (6 * large.non_embedding_params)
    assert math.isclose(with_attn / hours, expected) and 1.05 < expected < 1.15  # ~8% at 512 tokens
    assert zoo.estimate_gpu_hours("xlmr-xxl", tokens) > zoo.estimate_gpu_hours("xlmr-xl", tokens) > hours
    for bad in ({"gpu_tflops": 0}, {"mfu": 0}, {"mfu": 1.5}):
        with pytest.raises(XLTError):
            zoo.estimate_gpu_hours(large, tokens, **bad)
    with pytest.raises(XLTError):
        zoo.estimate_gpu_hours(large, -1)
