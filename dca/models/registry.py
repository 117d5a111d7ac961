"""Model names to loaded models: ``dca:<recipe>`` names are built here on first use; anything else
is a local directory or a hub name handed to ``from_pretrained`` as it is.

    >>> resolve_model("dca:tiny-policy")   # builds $DCA_HOME/models/tiny-policy once
    >>> model, tokenizer = load_causal_lm("dca:tiny-policy")
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PREFIX = "dca:"
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth", "model.ckpt")

_LOADED: dict[str, tuple[Any, Any]] = {}


class ModelNotFound(FileNotFoundError):
    """A model name that is not a recipe, not a directory and not available from the hub."""


class ModelError(ValueError):
    """A model directory dca refuses to load (pickle weights only, no config)."""


def dca_home() -> Path:
    """Where dca keeps what it builds: ``$DCA_HOME``, default ``~/.cache/dca``."""
    return Path(os.environ.get("DCA_HOME", "~/.cache/dca")).expanduser()


def models_dir() -> Path:
    return dca_home() / "models"


def recipe_dir(name: str) -> Path:
    """The directory a ``dca:<recipe>`` name lives in (whether built yet or not)."""
    return models_dir() / name.removeprefix(PREFIX)


def resolve_model(name: str, progress: bool = True) -> str:
    """A loadable path or hub name for ``name``, building a ``dca:`` recipe on first use."""
    if not name.startswith(PREFIX):
        return name
    from dca.models.recipes import get_recipe

    recipe = get_recipe(name.removeprefix(PREFIX))
    final = recipe_dir(recipe.name)
    if not (final / "config.json").exists() or outdated(recipe.name, final):
        build_recipe(recipe.name, progress=progress)
    return str(final)


# the recipe fields that decide the weights (not where or how verbosely the build ran)
_WEIGHT_FIELDS = ("kind", "init", "vocab_size", "data", "max_facts", "max_fact_chars", "max_question_chars",
                  "max_numbers", "refs", "comments", "supervise_from", "max_len", "steps", "batch_tokens", "lr",
                  "min_lr", "warmup", "weight_decay", "grad_clip", "seed")


def outdated(name: str, directory: Path) -> list[str]:
    """The recipe fields that a built ``dca:<name>`` in ``directory`` was trained with differently
    from the recipe now (per its ``dca_training.json``; none if that record is missing)."""
    import json

    from dca.models.recipes import get_recipe

    record = directory / "dca_training.json"
    if not record.exists():
        return []
    built = json.loads(record.read_text()).get("config", {})
    now = json.loads(json.dumps(get_recipe(name).config().to_dict()))
    return [f for f in _WEIGHT_FIELDS if f in built and not _same(built[f], now.get(f))]


def _same(built: Any, now: Any) -> bool:
    """Equal as recorded: a key the older record lacks (a setting added since, at its default) is no change."""
    if isinstance(built, dict) and isinstance(now, dict):
        return all(_same(v, now.get(k)) for k, v in built.items())
    if isinstance(built, list) and isinstance(now, list):
        return len(built) == len(now) and all(_same(a, b) for a, b in zip(built, now))
    return built == now


def build_recipe(name: str, progress: bool = True) -> Path:
    """Build ``dca:<name>`` into ``$DCA_HOME/models/<name>``; safe against kills and concurrent builds.

    Training runs in ``.<name>.build`` (resumable checkpoints; a killed build resumes there) and the
    finished model is renamed into place, so the final directory is either complete or absent. A
    lock file makes a second process wait for the first build instead of training alongside it.
    """
    from filelock import FileLock

    from dca.models.recipes import get_recipe
    from dca.models.training import caller_state_kept
    from dca.reasoning.sft import train_sft

    recipe = get_recipe(name)
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / recipe.name
    with FileLock(str(root / f".{recipe.name}.lock")):
        changed = outdated(recipe.name, final) if (final / "config.json").exists() else None
        if changed == []:
            return final
        why = (f"its recipe changed ({', '.join(changed)}); the old model is used until the new one is saved"
               if changed else "first use")
        print(f"building {PREFIX}{recipe.name} ({why}, ~{recipe.minutes:g} min) into {final}",
              file=sys.stderr, flush=True)
        work = root / f".{recipe.name}.build"
        config = recipe.config()
        config.out_dir = str(work)
        config.resume = True
        with caller_state_kept():  # the recipe sets its own seed and threads
            result = train_sft(config, progress=progress)
        if final.exists():  # an incomplete directory left by hand: replace it
            shutil.rmtree(final)
        os.replace(result.model_dir, final)
        shutil.rmtree(work, ignore_errors=True)
    return final


def _check_directory(path: Path) -> None:
    if any(path.glob("*.safetensors")):
        return
    pickles = [p.name for p in path.iterdir() if p.name in PICKLE_WEIGHTS or p.suffix in (".bin", ".pt", ".pth")]
    if pickles:
        raise ModelError(f"model directory {path} has only pickle weights ({', '.join(sorted(pickles))}); dca "
                         f"loads safetensors only: re-save it with save_pretrained(..., safe_serialization=True)")
    if not (path / "config.json").exists():
        raise ModelError(f"model directory {path} has no config.json; expected a save_pretrained directory")
    raise ModelError(f"model directory {path} has no *.safetensors weights")


def load_causal_lm(name_or_path: str, threads: int | None = None
                   ) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """``(model, tokenizer)`` through ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained``:
    safetensors only, in eval mode, loaded once per process per resolved path."""
    from dca.models.training import set_threads

    set_threads(threads)
    path = resolve_model(name_or_path)
    key = str(Path(path).resolve()) if Path(path).is_dir() else path
    if key not in _LOADED:
        model, tokenizer = _load(path, name_or_path)
        model.eval()
        _LOADED[key] = (model, tokenizer)
    return _LOADED[key]


def load_for_training(name_or_path: str) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """A fresh (uncached) trainable copy of a model and its tokenizer, for fine-tuning."""
    model, tokenizer = _load(resolve_model(name_or_path), name_or_path)
    model.train()
    return model, tokenizer


def clear_loaded() -> None:
    """Forget the per-process model cache (tests, or to free memory)."""
    _LOADED.clear()


def _load(path: str, name: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dca.models.tiny import bf16_fast

    dtype = torch.bfloat16 if bf16_fast() else torch.float32
    local = Path(path)
    if local.is_dir():
        _check_directory(local)
        kwargs: dict[str, Any] = {"local_files_only": True}
    elif local.exists() or path.startswith((".", "/", "~")):
        raise ModelNotFound(f"model '{name}' not found: {path} is not a model directory")
    else:
        kwargs = {"local_files_only": _hub_offline()}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=dtype, **kwargs)
    except OSError as exc:
        if local.is_dir():
            raise ModelError(f"model directory {path} could not be loaded: {str(exc).splitlines()[0]}") from None
        where = "the hub is offline" if _hub_offline() else f"the hub has no such model ({str(exc).splitlines()[0]})"
        raise ModelNotFound(f"model '{name}' not found: not a {PREFIX}… recipe, not a directory, and {where}"
                            ) from None
    return model, tokenizer


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
