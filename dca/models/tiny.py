"""Small Llama-shaped causal LMs built from a config, for dca's offline default models.

They are ordinary ``transformers`` models (``LlamaForCausalLM`` with SDPA attention), so they
save with ``save_pretrained`` and load through ``AutoModelForCausalLM.from_pretrained`` exactly
as a hub model does; only their size is dca's choice.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Preset:
    """The shape of a tiny model; the vocabulary comes from its tokenizer."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int = 1024
    vocab_size: int = 2048  # the tokenizer this preset is trained with


PRESETS: dict[str, Preset] = {
    # ~0.13M parameters: trains in seconds, for tests
    "micro": Preset(hidden=64, layers=2, heads=2, intermediate=176, max_positions=512, vocab_size=512),
    # ~1.1M parameters: the default policy and wording models. Under a ~10-minute CPU budget it
    # learned more than "small" (measured: 15% vs 8% on synthetic dev after the same wall time)
    "tiny": Preset(hidden=128, layers=4, heads=4, intermediate=352, max_positions=1024, vocab_size=2048),
    # ~3.7M parameters: for longer training runs
    "small": Preset(hidden=256, layers=4, heads=4, intermediate=688, max_positions=1024, vocab_size=2048),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown model size {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def build_model(tokenizer: "PreTrainedTokenizerBase", preset: str | Preset = "tiny", seed: int = 0,
                **overrides: Any) -> "PreTrainedModel":
    """A freshly initialised ``LlamaForCausalLM`` sized by ``preset`` for ``tokenizer``'s vocabulary.

    ``overrides`` go to ``LlamaConfig`` (e.g. ``num_hidden_layers=2``).
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    p = get_preset(preset) if isinstance(preset, str) else preset
    config = LlamaConfig(**{**dict(
        vocab_size=len(tokenizer),
        hidden_size=p.hidden,
        intermediate_size=p.intermediate,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.heads,
        max_position_embeddings=p.max_positions,
        hidden_act="silu",
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=True,
    ), **overrides})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def count_parameters(model: "PreTrainedModel") -> int:
    """Trainable parameters, counting tied embeddings once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def preset_dict(name: str) -> dict[str, Any]:
    return asdict(get_preset(name))


def bf16_fast() -> bool:
    """Does this CPU multiply bf16 in hardware (AVX512-BF16 / AMX)? Without it, bf16 autocast
    emulates the matmuls and runs about ten times slower than fp32 (measured on an AVX2 EPYC)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cap = torch.backends.cpu.get_cpu_capability()
    if cap in ("AVX512", "AMX") or "AMX" in cap:
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return False
