"""Supervised fine-tuning of a causal LM on (prompt, completion) pairs, loss on completion tokens only.

The loop is plain torch in nanoGPT style rather than ``transformers.Trainer`` / TRL's ``SFTTrainer``:
on two CPU cores the run is a fixed step budget measured in minutes, and a loop we own gives
exact resumability (step, optimizer, RNG and data order restored), token-budget batches grouped by
length, causal attention without a padding mask (right padding: no real token sees a pad, so SDPA
keeps its fast ``is_causal`` path), and no per-step framework overhead. The model, tokenizer and
saved result are ordinary ``transformers`` objects.

    dca train sft --config configs/train_policy.yaml      # or train_sft(SFTConfig(...)) from Python
"""
from __future__ import annotations

import bisect
import json
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from dca.reasoning.prompt import PromptFormat

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Messages = list[dict[str, str]]
Example = tuple["str | Messages", str]  # (prompt text or chat messages, completion)


@dataclass
class DataSource:
    """Problems from one task family: ``n`` of them (all when None), repeated ``repeat`` times."""

    family: str
    split: str = "train"
    n: int | None = None
    repeat: int = 1
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments for the family


@dataclass
class SFTConfig:
    """One supervised run. ``kind`` picks the pairs ("policy": step traces; "wording": sentences)."""

    kind: str = "policy"
    init: str = "tiny"  # a size preset (new tokenizer + model trained here) or a model name/path to fine-tune
    vocab_size: int | None = None  # for a new tokenizer; default: the preset's
    data: list[DataSource] = field(default_factory=list)
    dev: list[DataSource] = field(default_factory=list)
    max_facts: int = 5
    max_fact_chars: int = 200
    max_question_chars: int = 700  # the question is cut to this many characters in the prompt
    max_numbers: int = 0  # > 0: the prompt lists its numbers as step literals (see PromptFormat)
    refs: bool = False  # steps name the listed numbers n1, n2, ... (the policy writes the numbers back)
    comments: bool = False  # the policy writes (and its prompts show) the gold steps' trailing comments
    supervise_from: str = ""  # also train on the prompt from its last line starting with this text
    max_len: int = 512  # tokens; longer pairs are skipped (and counted)
    steps: int = 1000
    batch_tokens: int = 4096  # padded tokens per batch
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    bf16: str | bool = "auto"  # autocast; "auto" = only where the CPU has bf16 units
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/sft"
    resume: bool = True
    log_every: int = 10
    eval_every: int = 100
    checkpoint_every: int = 100
    eval_n: int = 100  # dev problems per family scored at the end (policy: exact answer; wording: states value)

    @property
    def prompt_format(self) -> PromptFormat:
        return PromptFormat(max_facts=self.max_facts, max_fact_chars=self.max_fact_chars,
                            max_question_chars=self.max_question_chars, max_numbers=self.max_numbers,
                            refs=self.refs, comments=self.comments)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "SFTConfig":
        """Build from a mapping (a YAML file's content), naming the file and field on any error."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a mapping of SFT settings, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown field {unknown[0]!r} (expected one of: {', '.join(known)})")
        values = dict(data)
        for key in ("data", "dev"):
            values[key] = [_source(s, f"{where}: {key}[{i}]") for i, s in enumerate(values.get(key) or [])]
        default = cls()
        for name, value in values.items():
            want = getattr(default, name)
            if name in ("data", "dev", "vocab_size", "threads", "bf16") or value is None and want is None:
                continue
            if isinstance(want, bool) and not isinstance(value, bool):
                raise ValueError(f"{where}: field {name!r} must be true or false, got {value!r}")
            if isinstance(want, (int, float)) and not isinstance(want, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{where}: field {name!r} must be a number, got {value!r}")
                values[name] = type(want)(value) if isinstance(want, float) else value
            if isinstance(want, str) and not isinstance(value, str):
                raise ValueError(f"{where}: field {name!r} must be text, got {value!r}")
        if values.get("kind", "policy") not in EXAMPLE_BUILDERS:
            raise ValueError(f"{where}: field 'kind' must be one of {', '.join(EXAMPLE_BUILDERS)}, "
                             f"got {values['kind']!r}")
        return cls(**values)


def _source(item: Any, where: str) -> DataSource:
    if isinstance(item, str):
        return DataSource(family=item)
    if not isinstance(item, dict) or "family" not in item:
        raise ValueError(f"{where}: expected {{family: <name>, split: ..., n: ...}}, got {item!r}")
    known = {f.name for f in fields(DataSource)}
    unknown = sorted(set(item) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r} (expected one of: {', '.join(sorted(known))})")
    return DataSource(**item)


def checked_fields(cls: type, data: Any, where: str, what: str,
                   optional: dict[str, type] | None = None) -> dict[str, Any]:
    """A config mapping's values checked against dataclass ``cls``'s fields and their defaults' types
    (``data``/``dev`` become ``DataSource``s; ``optional`` gives the type of fields whose default is
    None). Raises one line naming ``where`` and the field."""
    optional = optional or {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of {what} settings, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r} (expected one of: {', '.join(sorted(known))})")
    values = dict(data)
    for key in ("data", "dev"):
        if key in known:
            values[key] = [_source(s, f"{where}: {key}[{i}]") for i, s in enumerate(values.get(key) or [])]
    default = cls()
    for name, value in values.items():
        want = optional.get(name, type(getattr(default, name)))
        if name in ("data", "dev") or (value is None and name in optional):
            continue
        if want is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{where}: field {name!r} must be true or false, got {value!r}")
        elif want in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}: field {name!r} must be a number, got {value!r}")
            if want is float:
                values[name] = float(value)
        elif want is str and not isinstance(value, str):
            raise ValueError(f"{where}: field {name!r} must be text, got {value!r}")
    if "data" in known and not values.get("data", [1]):
        raise ValueError(f"{where}: field 'data' must list at least one task family")
    return values


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A training config file's top-level mapping; one-line errors naming the file and line."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training config {path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ValueError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return data or {}


def load_sft_config(path: str | Path) -> SFTConfig:
    """Read an SFT recipe from YAML (a flat mapping of ``SFTConfig`` fields)."""
    return SFTConfig.from_dict(read_yaml_mapping(path), where=str(path))


# --------------------------------------------------------------------------- examples


def _policy_examples(problems: Sequence[Any], config: SFTConfig) -> list[Example]:
    from dca.reasoning.prompt import policy_example

    pairs = [policy_example(p, config.prompt_format) for p in problems]
    return [pair for pair in pairs if pair is not None]


def _wording_examples(problems: Sequence[Any], config: SFTConfig) -> list[Example]:
    """Each problem's own sentence plus one with a random value, so the model learns to copy values."""
    from dca.wording import perturbed_example, wording_example

    pairs = [pair for p in problems for pair in (wording_example(p, config.prompt_format),
                                                 perturbed_example(p, config.seed))]
    return [p for p in pairs if p is not None]


EXAMPLE_BUILDERS: dict[str, Callable[[Sequence[Any], SFTConfig], list[Example]]] = {
    "policy": _policy_examples,
    "wording": _wording_examples,
}


def source_problems(source: DataSource) -> list[Any]:
    from dca.reasoning.tasks import get_family

    family = get_family(source.family, **source.options)
    return list(family.problems(source.split, n=source.n, seed=source.seed))


def mix_problems(sources: Sequence[DataSource]) -> list[Any]:
    """The problems of a data mix, each source's taken ``repeat`` times (as its examples are)."""
    return [p for s in sources for p in source_problems(s) * max(1, s.repeat)]


def source_key(source: DataSource, taken: Any = ()) -> str:
    """``family/split``, with the family options appended when another source already has that name
    (countdown-3 and countdown-4 dev sets are both ``countdown/dev``)."""
    key = f"{source.family}/{source.split}"
    if key in taken and source.options:
        key += "[" + ",".join(f"{k}={v}" for k, v in sorted(source.options.items())) + "]"
    return key


def build_examples(sources: Sequence[DataSource], config: SFTConfig) -> tuple[list[Example], dict[str, int]]:
    """The (prompt, completion) pairs of a data mix, with how many each source gave."""
    out: list[Example] = []
    counts: dict[str, int] = {}
    for s in sources:
        pairs = EXAMPLE_BUILDERS[config.kind](source_problems(s), config)
        key = source_key(s, counts)
        counts[key] = counts.get(key, 0) + len(pairs)  # sources with one name (no options tell them apart) add up
        out.extend(pairs * max(1, s.repeat))
    return out, counts


def render_prompt_text(prompt: "str | Messages", tokenizer: "PreTrainedTokenizerBase") -> str:
    """A prompt as text: chat messages go through the tokenizer's chat template when it has one."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['content']}\n" for m in prompt) + "Answer: "


def encode_prompt(text: str, tokenizer: "PreTrainedTokenizerBase") -> list[int]:
    """Token ids of a rendered prompt, with the tokenizer's bos unless the text already carries it."""
    bos = tokenizer.bos_token
    special = not (bos and text.startswith(bos))
    return tokenizer(text, add_special_tokens=special)["input_ids"]


def encode_pair(prompt: str, completion: str, tokenizer: "PreTrainedTokenizerBase",
                supervise_from: str = "") -> tuple[list[int], int]:
    """``(ids, start)``: prompt + completion + eos, and the index of the first supervised token:
    the completion's, or that of the prompt's last line starting with ``supervise_from``. (The
    renderer writes that line itself at inference; predicting it in training is extra signal,
    e.g. copying the question's numbers into the "Numbers:" line.)"""
    cut = prompt.rfind("\n" + supervise_from) + 1 if supervise_from else 0
    head, tail = (prompt[:cut], prompt[cut:]) if cut > 0 else (prompt, "")
    p = encode_prompt(head, tokenizer)
    c = tokenizer(tail + completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return p + c, len(p)


# --------------------------------------------------------------------------- batches


def epoch_batches(lengths: Sequence[int], batch_tokens: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch of batches: shuffled, grouped by length within windows (less padding), at most
    ``batch_tokens`` padded tokens each, in a shuffled order. A pure function of (seed, epoch)."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = 512
    batches: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: lengths[i])
        batch: list[int] = []
        longest = 0
        for i in chunk:
            m = max(longest, lengths[i])
            if batch and m * (len(batch) + 1) > batch_tokens:
                batches.append(batch)
                batch, m = [], lengths[i]
            batch.append(i)
            longest = m
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


class BatchPlan:
    """Step -> batch, epoch after epoch, so a resumed run sees exactly the batches it would have.
    Epochs differ in their number of batches (each shuffle packs the windows differently), so a
    step is located by the epochs' running totals, not by dividing by the first epoch's count."""

    def __init__(self, lengths: Sequence[int], batch_tokens: int, seed: int):
        self.lengths, self.batch_tokens, self.seed = list(lengths), batch_tokens, seed
        self._epochs: dict[int, list[list[int]]] = {}
        self._starts = [0]  # the first step of each epoch located so far
        self.per_epoch = len(self._epoch(0))  # the first epoch's, as reported in the run's log

    def _epoch(self, e: int) -> list[list[int]]:
        if e not in self._epochs:
            self._epochs = {e: epoch_batches(self.lengths, self.batch_tokens, self.seed, e)}
        return self._epochs[e]

    def locate(self, step: int) -> tuple[int, int]:
        """``(epoch, batch index within it)`` of a step."""
        e = max(0, bisect.bisect_right(self._starts, step) - 1)
        while True:
            if e + 1 == len(self._starts):
                self._starts.append(self._starts[e] + len(self._epoch(e)))
            if step < self._starts[e + 1]:
                return e, step - self._starts[e]
            e += 1

    def __getitem__(self, step: int) -> list[int]:
        e, i = self.locate(step)
        return self._epoch(e)[i]


def collate(rows: Sequence[tuple[list[int], int]], pad_id: int) -> tuple[Any, Any]:
    """Right-padded ``input_ids`` and ``labels`` (-100 on the prompt and the padding)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    x = torch.full((len(rows), width), pad_id, dtype=torch.long)
    y = torch.full((len(rows), width), -100, dtype=torch.long)
    for r, (ids, start) in enumerate(rows):
        x[r, : len(ids)] = torch.tensor(ids)
        y[r, start: len(ids)] = torch.tensor(ids[start:])
    return x, y


def completion_loss(model: "PreTrainedModel", x: Any, y: Any) -> Any:
    """Mean cross-entropy over completion tokens. No attention mask: with right padding a causal
    model never lets a real token attend to a pad, and SDPA keeps its fused causal kernel."""
    return model(input_ids=x, labels=y, use_cache=False).loss


# --------------------------------------------------------------------------- the run


@dataclass
class SFTResult:
    model_dir: Path
    steps: int
    final_loss: float | None
    dev_loss: float | None
    scores: dict[str, float]
    counts: dict[str, int]
    seconds: float
    tokens_per_second: float


def _new_tokenizer(texts: list[str], config: SFTConfig, out: Path) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    from dca.models.tiny import get_preset
    from dca.models.tokenizer import train_tokenizer

    path = out / "tokenizer"
    if config.resume and (path / "tokenizer.json").exists():  # a resumed run keeps its tokenizer
        return AutoTokenizer.from_pretrained(str(path))
    tok = train_tokenizer(texts, vocab_size=config.vocab_size or get_preset(config.init).vocab_size)
    tok.save_pretrained(str(path))
    return AutoTokenizer.from_pretrained(str(path))


def _texts(examples: Sequence[Example]) -> list[str]:
    out = []
    for prompt, completion in examples:
        if isinstance(prompt, str):
            out.append(prompt + completion)
        else:
            out.append("\n".join(m["content"] for m in prompt) + "\n" + completion)
    return out


def train_sft(config: SFTConfig, *, examples: Sequence[Example] | None = None,
              dev_examples: Sequence[Example] | None = None, progress: bool = True,
              on_step: Callable[[int, float], None] | None = None) -> SFTResult:
    """Train per ``config`` (or on the given ``examples``); returns where the model was saved.

    ``on_step(step, loss)`` is called after every step (and its checkpoint, if one was due).

    ``out_dir`` receives ``tokenizer/`` (when trained here), ``checkpoint.pt``, ``metrics.jsonl``,
    ``curve.png`` and the final ``model/`` (``save_pretrained`` + tokenizer + ``dca_training.json``).
    """
    import torch

    from dca.models.registry import load_for_training, resolve_model
    from dca.models.tiny import PRESETS, bf16_fast, build_model, count_parameters
    from dca.models.training import (RunLog, cosine_lr, load_checkpoint, rng_state, save_checkpoint,
                                     set_rng_state, set_seed, set_threads)

    t_start = time.perf_counter()
    set_threads(config.threads)
    set_seed(config.seed)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    counts: dict[str, int] = {}
    if examples is None:
        examples, counts = build_examples(config.data, config)
    if dev_examples is None:
        dev_examples = build_examples(config.dev, config)[0] if config.dev else []
    if not examples:
        raise ValueError(f"SFT ({config.kind}): the data mix gave no training pairs "
                         f"(sources: {', '.join(s.family for s in config.data) or 'none'})")

    if config.init in PRESETS:
        tokenizer = _new_tokenizer(_texts(examples), config, out)
        model = build_model(tokenizer, config.init, seed=config.seed)
        start = None
    else:
        start = resolve_model(config.init)  # resolved once: loaded, and recorded for a fine-tune
        model, tokenizer = load_for_training(start)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.train()

    def encode(pairs: Sequence[Example]) -> tuple[list[tuple[list[int], int]], int]:
        rows, skipped = [], 0
        for prompt, completion in pairs:
            ids, start = encode_pair(render_prompt_text(prompt, tokenizer), completion, tokenizer,
                                     config.supervise_from)
            if len(ids) > config.max_len:
                skipped += 1
                continue
            rows.append((ids, start))
        return rows, skipped

    rows, skipped = encode(examples)
    dev_rows = encode(dev_examples)[0]
    dev_rows = random.Random(config.seed).sample(dev_rows, min(len(dev_rows), 96))  # a fixed mixed sample
    counts["too_long"] = skipped
    if not rows:
        raise ValueError(f"SFT: every pair is longer than max_len={config.max_len} tokens")
    plan = BatchPlan([len(ids) for ids, _ in rows], config.batch_tokens, config.seed)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.95))
    use_bf16 = bf16_fast() if config.bf16 == "auto" else bool(config.bf16)

    ckpt_path = out / "checkpoint.pt"
    start_step, tokens_seen = 0, 0
    state = load_checkpoint(ckpt_path) if config.resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start_step, tokens_seen = int(state["step"]), int(state["tokens"])

    n_params = count_parameters(model)
    log = RunLog(out, config.steps, start=start_step, progress=progress,
                 title=f"sft {config.kind} ({n_params / 1e6:.1f}M params)")
    if start_step == 0:
        log.log(-1, params=n_params, examples=len(rows), dev_examples=len(dev_rows), counts=counts,
                batches_per_epoch=plan.per_epoch, bf16=use_bf16)

    def dev_loss() -> float | None:
        if not dev_rows:
            return None
        model.eval()
        total, n = 0.0, 0
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            for i in range(0, len(dev_rows), 16):
                part = dev_rows[i:i + 16]
                x, y = collate(part, tokenizer.pad_token_id)
                k = int((y != -100).sum())
                total += completion_loss(model, x, y).item() * k
                n += k
        model.train()
        return total / max(1, n)

    loss_value, window_tokens, t_window = None, 0, time.perf_counter()
    last_dev = None
    step = start_step
    try:
        for step in range(start_step, config.steps):
            lr = cosine_lr(step, lr=config.lr, min_lr=config.min_lr, warmup=config.warmup, total=config.steps)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = collate([rows[i] for i in plan[step]], tokenizer.pad_token_id)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                loss = completion_loss(model, x, y)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss_value = loss.item()
            window_tokens += x.numel()
            tokens_seen += x.numel()
            last = step == config.steps - 1
            metrics: dict[str, Any] = {}
            if step % config.log_every == 0 or last:
                dt = time.perf_counter() - t_window
                metrics.update(loss=round(loss_value, 4), lr=round(lr, 6), grad_norm=round(float(norm), 3),
                               tokens=tokens_seen, tok_s=round(window_tokens / max(dt, 1e-9), 1))
                window_tokens, t_window = 0, time.perf_counter()
            if config.eval_every and (step % config.eval_every == 0 or last) and dev_rows:
                last_dev = dev_loss()
                metrics["dev_loss"] = round(last_dev, 4)
            if metrics:
                log.log(step, **metrics)
            else:
                log.advance(step)
            if (config.checkpoint_every and (step + 1) % config.checkpoint_every == 0) or last:
                save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                            "step": step + 1, "tokens": tokens_seen, "rng": rng_state()})
            if on_step is not None:
                on_step(step, loss_value)
    finally:
        log.close()
    log.plot()

    model.eval()
    scores = evaluate_after_training(model, tokenizer, config)
    if scores:
        log.log(config.steps, **{f"dev_{k}": v for k, v in scores.items()})
    seconds = time.perf_counter() - t_start
    summary = {"config": config.to_dict(), "params": n_params, "counts": counts, "examples": len(rows),
               "final_loss": loss_value, "dev_loss": last_dev, "scores": scores, "tokens": tokens_seen,
               "seconds": round(seconds, 1)}
    if start is not None:  # a fine-tune: where it started (its countdown comment style follows from there)
        summary["start"] = start
    model_dir = _save(model, tokenizer, out, summary, config.prompt_format if config.kind == "policy" else None)
    tok_rate = [r["tok_s"] for r in log.records if "tok_s" in r]
    return SFTResult(model_dir=model_dir, steps=config.steps, final_loss=loss_value, dev_loss=last_dev,
                     scores=scores, counts=counts, seconds=seconds,
                     tokens_per_second=sum(tok_rate) / len(tok_rate) if tok_rate else 0.0)


def _save(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", out: Path,
          summary: dict[str, Any], fmt: PromptFormat | None = None) -> Path:
    """``save_pretrained`` into ``model.tmp`` then rename to ``model``: never a half-written model."""
    import shutil

    tmp, final = out / "model.tmp", out / "model"
    shutil.rmtree(tmp, ignore_errors=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / "dca_training.json").write_text(json.dumps(summary, indent=2, default=str))
    if fmt is not None:
        from dca.reasoning.prompt import save_format

        save_format(fmt, tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def evaluate_after_training(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase",
                            config: SFTConfig) -> dict[str, float]:
    """Per dev family: exact-answer accuracy (policy) or the share of sentences stating the value (wording)."""
    if not config.eval_n or not config.dev:
        return {}
    scores: dict[str, float] = {}
    for source in config.dev:
        problems = source_problems(DataSource(source.family, source.split, n=config.eval_n, seed=source.seed,
                                              options=source.options))
        if config.kind == "policy":
            from dca.reasoning.policy import evaluate_policy

            report = evaluate_policy(model, tokenizer, problems, config.prompt_format)
        else:
            from dca.wording import evaluate_wording

            report = evaluate_wording(model, tokenizer, problems, config.prompt_format)
        scores[source.family] = round(report["accuracy"], 4)
    return scores


def run_train_sft(config_path: str, resume: bool = True) -> int:
    """CLI entry (``dca train sft --config FILE [--fresh]``): train, print where the model went and its scores."""
    config = load_sft_config(config_path)
    config.resume = resume
    result = train_sft(config)
    print(f"saved {result.model_dir} ({result.steps} steps, {result.seconds / 60:.1f} min, "
          f"{result.tokens_per_second:.0f} tokens/s, final loss {result.final_loss:.3f})")
    for family, score in result.scores.items():
        print(f"  dev {family}: {score:.1%}")
    return 0
