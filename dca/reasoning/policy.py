"""The LM policy: any ``AutoModelForCausalLM`` proposes the next step of a trace in the step language.

    policy = LMPolicy("dca:tiny-policy")          # or a directory / hub name of a real model
    policy.propose(ProposeRequest(task, evidence, steps, n=4, temperature=0.7))

``propose`` returns ``request.n`` candidate next lines (one batched ``generate`` call with the KV
cache, stopping at the newline); ``complete`` returns whole remaining traces, for search
strategies. Greedy decoding at temperature 0 (beam search when n > 1, so candidates differ),
seeded sampling otherwise. Scores are the mean log-probability of the generated tokens under the
model's own (untempered) distribution, so they compare across temperatures.
"""
from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any, Sequence

from dca.abilities import Proposal, ProposeRequest
from dca.reasoning.prompt import PromptFormat, from_refs, problem_facts, prompt_numbers, render_prompt
from dca.types import Compute

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_ANSWER_LINE = re.compile(r"^\s*answer\s*=")
_TOKEN_IDS: dict[tuple[int, str], list[int]] = {}  # per (tokenizer, character): the tokens whose text has it
# Seeded sampling sets torch's global RNG, which threads share: concurrent runs (``dca serve``,
# ``Agent.arun``) take turns at ``generate`` so each call sees exactly its own seed. On CPU one call
# already keeps every core busy, so taking turns costs no throughput.
_GENERATE_LOCK = threading.Lock()


def newline_token_ids(tokenizer: "PreTrainedTokenizerBase") -> list[int]:
    """Every token whose text contains a newline (each ends a step line), cached per tokenizer."""
    return _token_ids_with(tokenizer, "\n")


def comment_token_ids(tokenizer: "PreTrainedTokenizerBase") -> list[int]:
    """Every token whose text contains ``#`` (each starts a step's trailing comment)."""
    return _token_ids_with(tokenizer, "#")


def _token_ids_with(tokenizer: "PreTrainedTokenizerBase", char: str) -> list[int]:
    key = (id(tokenizer), char)
    if key not in _TOKEN_IDS:
        ids = range(len(tokenizer))
        texts = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False)
        _TOKEN_IDS[key] = [i for i, t in zip(ids, texts) if char in t]
    return _TOKEN_IDS[key]


def trace_lines(text: str) -> list[str]:
    """The non-empty lines of generated text, up to and including the first ``answer = ...`` line."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        out.append(line)
        if _ANSWER_LINE.match(line):
            break
    return out


class _AnswerLineDone:
    """Stopping criterion for whole traces: stop a sequence once an ``answer = ...`` line has ended
    (a model not trained to emit eos after the answer would otherwise run to the token limit)."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", prompt_len: int):
        self.tokenizer, self.prompt_len = tokenizer, prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        done = [any(_ANSWER_LINE.match(ln) for ln in t.split("\n")[:-1]) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def generate(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", prompts: Sequence[list[int]], *,
             n: int = 1, temperature: float = 0.0, seed: int | None = None, max_new_tokens: int = 48,
             until: str = "line", top_k: int | None = None, decoder: str = "loop") -> list[list[tuple[str, float, int]]]:
    """Continue each prompt ``n`` times; per prompt a list of ``(text, mean logprob, tokens)``.

    ``until="line"`` stops at the first newline, ``"step"`` there or where the line's trailing comment
    starts (a token with ``#``), ``"trace"`` after the ``answer = ...`` line or eos.
    Prompts of different lengths are left-padded into one batch. Greedy decoding and sampling run
    through ``decode`` (``decoder="loop"``, the default) or ``model.generate`` (``decoder="generate"``,
    the same tokens for greedy decoding); beam search (temperature 0, ``n`` > 1) always uses ``generate``.
    """
    import torch

    if decoder not in ("loop", "generate"):
        raise ValueError(f"generate: decoder must be 'loop' or 'generate', got {decoder!r}")
    if until not in ("line", "step", "trace"):
        raise ValueError(f"generate: until must be 'line', 'step' or 'trace', got {until!r}")
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    newlines = newline_token_ids(tokenizer)
    stops = [eos] if until == "trace" else [eos, *newlines]
    if until == "step":
        stops += comment_token_ids(tokenizer)
    beams = n if temperature <= 0 and n > 1 else 1
    loop = beams == 1 and decoder == "loop"
    # the loop reads each distinct prompt once and copies its cache to the rows that continue it (n
    # samples of one prompt, a GRPO group's shared state); ``generate`` gets every row
    per_row = n if temperature > 0 else 1
    distinct: dict[tuple[int, ...], int] = {}
    rows = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts for _ in range(per_row)]
    batch = [list(p) for p in distinct] if loop else list(prompts)
    width = max(len(p) for p in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, p in enumerate(batch):
        ids[r, width - len(p):] = torch.tensor(p)
        mask[r, width - len(p):] = 1
    with _GENERATE_LOCK, torch.no_grad(), torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        scores = None
        if not loop:
            seqs, logp, scores = _hf_generate(model, tokenizer, ids, mask, n=n, beams=beams, temperature=temperature,
                                              max_new_tokens=max_new_tokens, until=until, top_k=top_k, stops=stops,
                                              pad=pad, suppress=[eos, *newlines])
        else:
            seqs, logp = decode(model, ids, mask, temperature=temperature, top_k=top_k, max_new_tokens=max_new_tokens,
                                stops=stops, pad=pad, suppress=[eos, *newlines],
                                answer_line=_AnswerLineTokens(tokenizer, newlines) if until == "trace" else None,
                                rows=None if len(rows) == len(batch) else torch.tensor(rows))
    lengths = [_length(row, stops, pad) for row in seqs.tolist()]
    if scores is None:  # a sequence's score: the mean log-probability of its tokens up to its stop
        scores = [float(logp[r, :k].mean()) if k else float("-inf") for r, k in enumerate(lengths)]
    texts = tokenizer.batch_decode([row[:k] for row, k in zip(seqs.tolist(), lengths)], skip_special_tokens=True)
    per = n if beams > 1 or temperature > 0 else 1  # sequences come grouped by prompt
    flat = list(zip(texts, scores, lengths))
    return [flat[i * per:(i + 1) * per] for i in range(len(prompts))]


def _hf_generate(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", ids: Any, mask: Any, *, n: int,
                 beams: int, temperature: float, max_new_tokens: int, until: str, top_k: int | None,
                 stops: list[int], pad: int, suppress: list[int]) -> tuple[Any, Any, list[float] | None]:
    """``model.generate``: beam search, and the reference the decode loop is measured against.
    Returns the generated tokens with, for beams, their scores, else the log-probability of each
    token (``(seqs, None, scores)`` or ``(seqs, logp, None)``, as ``decode`` gives them)."""
    import torch
    from transformers import StoppingCriteriaList

    kwargs: dict[str, Any] = {"begin_suppress_tokens": suppress}  # a step or trace is never empty
    if until == "trace":
        kwargs["stopping_criteria"] = StoppingCriteriaList([_AnswerLineDone(tokenizer, ids.shape[1])])
    if beams > 1:
        kwargs.update(num_beams=beams, num_return_sequences=n, output_scores=True, do_sample=False,
                      early_stopping=True, length_penalty=1.0)
    elif temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_k=top_k or 0, top_p=1.0,
                      num_return_sequences=n, output_logits=True)
    else:
        kwargs.update(do_sample=False, output_logits=True)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, eos_token_id=stops,
                         pad_token_id=pad, return_dict_in_generate=True, use_cache=True, **kwargs)
    seqs = out.sequences[:, ids.shape[1]:]
    if beams > 1:
        return seqs, None, [float(s) for s in out.sequences_scores]
    logp = torch.stack(out.logits, 1).float().log_softmax(-1)  # (batch, steps, vocab)
    return seqs, logp.gather(-1, seqs[:, : logp.shape[1]].unsqueeze(-1)).squeeze(-1), None


class _AnswerLineTokens:
    """Whole-trace stop for ``decode``: a row is done once a line that starts ``answer =`` has ended.
    It decodes each row's current line once, when a newline token closes it (not the whole text at
    every step, as a ``StoppingCriteria`` over ``input_ids`` must)."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", newlines: list[int]):
        self.tokenizer, self.newlines = tokenizer, set(newlines)
        self.lines: dict[int, list[int]] = {}

    def __call__(self, row: int, token: int) -> bool:
        line = self.lines.setdefault(row, [])
        line.append(token)
        if token not in self.newlines:
            return False
        parts = self.tokenizer.decode(line, skip_special_tokens=True).split("\n")
        if len(line) > 1 and line[0] in self.newlines:
            parts = parts[1:]  # what the opening newline token carried before its newline was checked with its line
        self.lines[row] = [token]  # a newline token may carry the start of the next line
        return any(_ANSWER_LINE.match(ln) for ln in parts[:-1])


def decode(model: "PreTrainedModel", ids: Any, mask: Any, *, temperature: float, top_k: int | None,
           max_new_tokens: int, stops: list[int], pad: int, suppress: list[int],
           answer_line: _AnswerLineTokens | None = None, rows: Any = None) -> tuple[Any, Any]:
    """Greedy decoding or sampling over the model's own forward and ``DynamicCache``, one row per
    sequence; returns the generated tokens (pad after a row stops) and the log-probability of each
    under the untempered distribution. ``rows`` (optional): the prompt row each sequence continues,
    so a prompt shared by many sequences is read once and its cache copied (``Cache.reorder_cache``)
    instead of running the same prefill once per sequence.

    Written out rather than left to ``model.generate`` because at batch 1 the tiny policies lose
    10-20 % of their speed to its per-step machinery (logits-processor and stopping-criteria lists,
    keyword re-plumbing, config look-ups; ``bench/lm_throughput.py``: 0.73-0.78 of plain torch through
    ``generate``, 0.86-0.90 through this loop); the forward pass and the cache are transformers' own."""
    import inspect

    import torch
    from transformers import DynamicCache

    count = ids.shape[0] if rows is None else len(rows)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    stop = torch.tensor(stops, dtype=torch.long)
    done = torch.zeros(count, dtype=torch.bool)
    out = torch.full((count, max_new_tokens), pad, dtype=torch.long)
    logps = torch.zeros((count, max_new_tokens))
    step_ids, step_pos = ids, positions
    params = inspect.signature(model.forward).parameters
    keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.24
    padded = not bool(mask.all())  # without padding the model's own causal mask is enough (and faster)
    for t in range(max_new_tokens):
        logits = model(input_ids=step_ids, attention_mask=mask if padded else None, position_ids=step_pos,
                       use_cache=True, **{cache_arg: cache}, **keep).logits[:, -1].float()
        if t == 0 and rows is not None:  # the prompts read once: each sequence takes its prompt's row
            logits, mask, positions = logits[rows], mask[rows], positions[rows]
            cache.reorder_cache(rows)
        logp = logits.log_softmax(-1)  # the model's own distribution, before suppression and temperature
        if t == 0:
            logits[:, suppress] = float("-inf")  # a step or trace is never empty
        if temperature > 0:
            scaled = logits / temperature
            if top_k:
                kth = scaled.topk(min(top_k, scaled.shape[-1]), -1).values[:, -1:]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            token = torch.multinomial(scaled.softmax(-1), 1).squeeze(-1)
        else:
            token = logits.argmax(-1)
        token = token.masked_fill(done, pad)
        out[:, t] = token
        logps[:, t] = logp.gather(-1, token.unsqueeze(-1)).squeeze(-1)
        finished = torch.isin(token, stop)
        if answer_line is not None:
            for r in (~done & ~finished).nonzero().flatten().tolist():
                finished[r] = answer_line(r, int(token[r]))
        done |= finished
        if bool(done.all()):
            return out[:, : t + 1], logps[:, : t + 1]
        step_ids = token.unsqueeze(-1)
        step_pos = positions[:, -1:] + t + 1
        if padded:
            mask = torch.cat([mask, torch.ones((count, 1), dtype=mask.dtype)], -1)
    return out, logps


def _length(row: list[int], stops: list[int], pad: int) -> int:
    """Generated tokens up to and including the first stop token."""
    stop = set(stops)
    for i, t in enumerate(row):
        if t in stop:
            return i + 1
    # pads after an early stop are not generated tokens
    while row and row[-1] == pad and pad not in stop:
        row = row[:-1]
    return len(row)


_UNREAD = object()  # LMPolicy's comment style before its training record is read


class LMPolicy:
    """``dca.abilities.Logic`` backed by a causal LM that writes step-language lines.

    A policy trained on countdown traces whose steps carry the interpreter's comments (value,
    finishing move, operands left: ``dca:countdown-reasoner``) samples countdown questions with the
    interpreter in the loop (``stepwise``, on by default for such a policy): a line at a time, each
    line's comment written by the interpreter, never by the policy. ``stepwise=False`` lets it write
    whole traces alone.
    """

    def __init__(self, model: str = "dca:tiny-policy", *, max_new_tokens: int = 48, max_facts: int | None = None,
                 max_fact_chars: int | None = None, max_trace_tokens: int = 256, top_k: int | None = None,
                 threads: int | None = None, stepwise: bool | None = None):
        self.model_name = model
        self.stepwise = stepwise
        self._style: dict[str, bool] | None | object = _UNREAD
        self.max_new_tokens = max_new_tokens
        self.max_trace_tokens = max_trace_tokens
        self._overrides = {k: v for k, v in (("max_facts", max_facts), ("max_fact_chars", max_fact_chars))
                           if v is not None}
        self._format: PromptFormat | None = None
        self.top_k = top_k
        self.threads = threads
        self._loaded: tuple[Any, Any] | None = None

    @property
    def format(self) -> PromptFormat:
        """The prompt format the model was trained with (its ``dca_prompt.json``), with overrides."""
        if self._format is None:
            from dca.reasoning.prompt import load_format

            self._format = load_format(self._model_dir(), **self._overrides)
        return self._format

    def _model_dir(self) -> str | None:
        from pathlib import Path

        from dca.models.registry import resolve_model

        path = resolve_model(self.model_name)
        return path if Path(path).is_dir() else None

    def load(self) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
        """Load (building a ``dca:`` recipe on first use) and return ``(model, tokenizer)``."""
        if self._loaded is None:
            from dca.models.registry import load_causal_lm

            self._loaded = load_causal_lm(self.model_name, threads=self.threads)
        return self._loaded

    def prompt_ids(self, request: ProposeRequest) -> list[int]:
        from dca.reasoning.sft import encode_prompt

        _, tokenizer = self.load()
        problem = self.stepwise_problem(request)
        if problem is not None:
            from dca.reasoning.tasks.countdown import stepwise_prompt

            text = stepwise_prompt(problem, [_line(s) for s in request.steps], self.format, self._comment_style() or {})
            if text is not None:
                return encode_prompt(text, tokenizer)
        return encode_prompt(render_prompt(request.task, request.evidence, request.steps, self.format), tokenizer)

    def stepwise_problem(self, request: ProposeRequest) -> Any:
        """The countdown ``Problem`` of ``request`` if this policy samples it with the interpreter in
        the loop (see the class docstring), else None."""
        if request.evidence or self._comment_style() is None:
            return None
        from dca.reasoning.tasks.countdown import as_problem

        return as_problem(request.task)

    def _comment_style(self) -> dict[str, bool] | None:
        """The comments stepwise sampling writes (``countdown.trace_style``), None if it is off."""
        if self.stepwise is False:
            return None
        if self._style is _UNREAD:
            from dca.reasoning.tasks.countdown import trace_style, trained_with_comments

            self._style = trace_style(self) if self.stepwise or trained_with_comments(self) else None
        return self._style  # type: ignore[return-value]

    def stepwise_draws(self, requests: Sequence[ProposeRequest], n: int, temperature: float, seed: int | None,
                       whole: bool) -> list[list[tuple[list[str], float, int]]] | None:
        """``n`` samples per request with the interpreter in the loop, as ``(lines, mean log-probability,
        tokens)``: the next line, or (``whole``) every line to the answer. None unless this policy
        samples every one of the requests stepwise."""
        problems = [self.stepwise_problem(r) for r in requests]
        if not problems or any(p is None for p in problems):
            return None
        import random

        from dca.reasoning.tasks.countdown import stepwise_traces

        model, tokenizer = self.load()
        limits = [max(1, r.max_steps - len(r.steps)) if whole else 1 for r in requests]
        traces = stepwise_traces(model, tokenizer, self.format, [p for p in problems for _ in range(n)],
                                 style=self._comment_style() or {}, temperature=temperature,
                                 seed=random.randrange(2**31) if seed is None else seed, max_steps=max(limits),
                                 max_new_tokens=self.max_new_tokens, top_k=self.top_k,
                                 prefixes=[[_line(s) for s in r.steps] for r in requests for _ in range(n)])
        return [[(t.lines[:limit] or [""], t.mean_logprob, t.tokens) for t in traces[i * n:(i + 1) * n]]
                for i, limit in enumerate(limits)]

    def literal(self, line: str, request: ProposeRequest, numbers: list[str] | None = None) -> str:
        """A generated line as the step language has it: listed-number names written back as numbers."""
        if not self.format.refs:
            return line
        if numbers is None:
            numbers = prompt_numbers(request.task, request.evidence, self.format)
        return from_refs(line, numbers)

    def lines_of(self, text: str, request: ProposeRequest, numbers: list[str] | None = None,
                 whole: bool = True) -> list[str]:
        """A generated continuation as step lines with literal numbers: every line up to the answer
        (``whole``, at most the steps ``request`` has left) or only the first."""
        if whole:
            lines = trace_lines(text)[: max(1, request.max_steps - len(request.steps))]
        else:
            lines = [text.split("\n")[0].strip()]
        return [self.literal(ln, request, numbers) for ln in lines if ln] or [""]

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        """``request.n`` next-step lines, skipping ``request.avoid`` and duplicates where possible."""
        return self._sample(request, until="line")

    def complete(self, request: ProposeRequest) -> list[Proposal]:
        """``request.n`` whole continuations: every remaining line up to ``answer = ...``."""
        return self._sample(request, until="trace")

    def draws(self, requests: Sequence[ProposeRequest], n: int, temperature: float, seed: int | None,
              whole: bool) -> list[list[tuple[list[str], float, int]]]:
        """``n`` samples per request, duplicates kept, as ``(lines, mean log-probability, tokens)``: the
        next line, or (``whole``) every line to the answer. All requests go into one batched call, with
        the interpreter in the loop where this policy samples them stepwise (``stepwise_draws``)."""
        drawn = self.stepwise_draws(requests, n, temperature, seed, whole)
        if drawn is not None:
            return drawn
        model, tokenizer = self.load()
        outs = generate(model, tokenizer, [self.prompt_ids(r) for r in requests], n=n, temperature=temperature,
                        seed=seed, max_new_tokens=self.max_trace_tokens if whole else self.max_new_tokens,
                        until="trace" if whole else "line", top_k=self.top_k)
        result = []
        for request, samples in zip(requests, outs):
            numbers = prompt_numbers(request.task, request.evidence, self.format) if self.format.refs else []
            result.append([(self.lines_of(text, request, numbers, whole), score, k) for text, score, k in samples])
        return result

    def _sample(self, request: ProposeRequest, until: str) -> list[Proposal]:
        n = max(1, request.n)
        avoid = {a.strip() for a in request.avoid}
        seen: dict[tuple[str, ...], Proposal] = {}
        spare: list[Proposal] = []
        compute = Compute()
        # round 1 asks for a few extra candidates when some lines are already ruled out;
        # round 2 (only if still short) samples hotter, since greedy / beams would repeat themselves
        rounds = [(request.temperature, n + min(len(avoid), 4)), (max(request.temperature, 1.0), 2 * n)]
        for r, (temperature, count) in enumerate(rounds):
            seed = None if request.seed is None else request.seed + r
            t0 = time.perf_counter()
            drawn = self.draws([request], count, temperature, seed, until == "trace")[0]
            compute.add(Compute(model_calls=1, policy_samples=len(drawn), tokens=sum(k for _, _, k in drawn),
                                wall_time=time.perf_counter() - t0))
            for lines, score, _ in drawn:
                key = tuple(lines)
                prop = Proposal(lines=lines, score=score)
                if lines[0] in avoid or key in seen:
                    spare.append(prop)
                else:
                    seen[key] = prop
            if len(seen) >= n:
                break
        chosen = sorted(seen.values(), key=lambda p: -(p.score if p.score is not None else -1e9))[:n]
        while len(chosen) < n:  # everything new is used up: repeat the best spares rather than return fewer
            chosen.append((spare or chosen)[len(chosen) % max(1, len(spare or chosen))])
        share = _split_compute(compute, len(chosen))
        return [Proposal(lines=p.lines, score=p.score, compute=c) for p, c in zip(chosen, share)]


def _line(step: Any) -> str:
    return step.text if hasattr(step, "text") else str(step)


def _split_compute(total: Compute, k: int) -> list[Compute]:
    """The call's compute on the first proposal, zeros on the rest, so sums over proposals are exact."""
    return [total] + [Compute() for _ in range(k - 1)]


def evaluate_policy(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", problems: Sequence[Any],
                    fmt: PromptFormat | None = None, *, gold_facts: bool = True, batch_size: int = 16,
                    max_new_tokens: int = 256) -> dict[str, Any]:
    """Greedy whole traces for ``problems``, run by the interpreter and scored exactly by their family.

    ``gold_facts`` keeps the dataset's gold facts among the facts shown (as in training); without
    it the facts are the top lexical matches of the question, a stand-in for the retriever.
    """
    from dca.reasoning.sft import encode_prompt
    from dca.reasoning.steps import Interpreter, StepError
    from dca.reasoning.tasks import get_family

    fmt = fmt or PromptFormat()
    scorers: dict[str, Any] = {}
    correct = executed = tokens = 0
    t0 = time.perf_counter()
    order = sorted(range(len(problems)), key=lambda i: len(problems[i].question) + 200 * len(problems[i].evidence))
    results: list[dict[str, Any]] = [{} for _ in problems]
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        prompts = [encode_prompt(render_prompt(problems[i].question, problem_facts(problems[i], fmt, gold_facts),
                                               (), fmt), tokenizer) for i in idx]
        outs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, until="trace")
        for i, out in zip(idx, outs):
            text, _, k = out[0]
            tokens += k
            p = problems[i]
            lines = trace_lines(text)
            if fmt.refs:
                numbers = prompt_numbers(p.question, problem_facts(p, fmt, gold_facts), fmt)
                lines = [from_refs(ln, numbers) for ln in lines]
            answer, error = None, None
            try:
                answer = Interpreter().run_trace(lines).get("answer")
                executed += 1
            except StepError as exc:
                error = str(exc)
            family = p.family or "?"
            if family not in scorers:
                scorers[family] = get_family(family)
            ok = answer is not None and bool(scorers[family].score(p, answer))
            correct += ok
            results[i] = {"id": p.id, "lines": lines, "answer": answer, "correct": ok, "error": error}
    seconds = time.perf_counter() - t0
    n = max(1, len(problems))
    return {"accuracy": correct / n, "executed": executed / n, "n": len(problems), "tokens": tokens,
            "seconds": seconds, "tokens_per_s": tokens / max(seconds, 1e-9), "results": results}
