"""Pipeline configuration: a YAML file validated by pydantic.

Every error is one line that names the file, the line, the field path and what was expected::

    configs/x.yaml:12 knowledge.top_k: must be >= 1, got 0
    configs/x.yaml:4 logic.strategy: unknown key 'stratgy'; did you mean 'strategy'?
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dca.verifier import DEFAULT_CHECKS, DEFAULT_CONSTANTS


class ConfigError(ValueError):
    """A configuration problem, reported as one line: ``file:line field.path: expectation``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, more: int = 0):
        self.file, self.line, self.field, self.more = file, line, field, more
        where = file or "<config>"
        if line:
            where += f":{line}"
        text = f"{where} {field}: {message}" if field else f"{where}: {message}"
        if more:
            text += f" (and {more} more problem{'s' if more > 1 else ''})"
        self.message = message
        super().__init__(text)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


ABILITY_KIND_HELP = "a built-in kind or 'package.module:ClassName'"


class KnowledgeConfig(_Section):
    """The RAG store the knowledge ability reads (``retrieval.Index``)."""

    kind: str = Field("index", description="'index' (dca's store), 'none', or " + ABILITY_KIND_HELP)
    path: str = Field(".dca/index", description="directory of the embedded Chroma store (relative to the working directory)")
    collection: str = Field("docs", min_length=3, max_length=63, description="collection name in the store")
    server: str | None = Field(None, description="'host:port' of a Chroma server to use instead of the embedded store")
    embedder: str = Field("all-MiniLM-L6-v2", description="sentence-transformers model name or path")
    mode: Literal["dense", "bm25", "hybrid"] = Field("hybrid", description="search mode")
    top_k: int = Field(5, ge=1, le=100, description="evidence chunks retrieved for the task")
    reranker: str | None = Field(None, description="cross-encoder name or path to rerank with (optional)")
    int8: bool | None = Field(None, description="encode added documents with the int8-quantised embedder "
                              "(null: yes for the default embedder, no for others; false opts out)")
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for a custom kind")


class LogicConfig(_Section):
    """The reasoner that proposes steps."""

    kind: str = Field("lm", description="'lm' (a causal LM policy) or " + ABILITY_KIND_HELP)
    model: str = Field("dca:tiny-policy", description="causal LM name or path; 'dca:<recipe>' builds dca's tiny model")
    strategy: str = Field("greedy", description="search strategy: greedy, self_consistency, best_of_n, beam, mcts, rstar")
    samples: int = Field(1, ge=1, le=1024, description="policy samples the strategy may spend per proposal")
    max_new_tokens: int = Field(48, ge=4, le=2048, description="tokens generated per step")
    max_facts: int = Field(5, ge=0, le=50, description="evidence facts shown to the policy")
    scorer: str | None = Field(None, description="step scorer model name or path, for guided strategies")
    seed: int | None = Field(0, description="sampling seed (null: nondeterministic)")
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for the policy or strategy")


class WordingConfig(_Section):
    """The language model that words the verified answer."""

    kind: str = Field("lm", description="'lm', 'template', or " + ABILITY_KIND_HELP)
    model: str = Field("dca:tiny-wording", description="causal LM name or path for kind 'lm'")
    max_new_tokens: int = Field(40, ge=4, le=1024, description="tokens generated for the sentence")
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for a custom kind")


class RuleConfig(_Section):
    """One rule of the pipeline's constitution (``dca.rules``): exactly one of the four kinds."""

    name: str | None = Field(None, description="what a violation reports (default: the rule itself)")
    forbid_functions: list[str] | None = Field(None, description="step functions that may not be called")
    step_must_not_match: str | None = Field(None, description="regular expression no step may contain")
    answer_must_not_match: str | None = Field(None, description="regular expression the answer and its sentence may not contain")
    answer_range: list[float] | None = Field(None, description="[low, high] a numeric answer must lie in")
    ignore_case: bool = Field(False, description="match the patterns ignoring case")

    @model_validator(mode="after")
    def _one_kind(self) -> "RuleConfig":
        from dca.rules import Rule, RuleError

        try:
            Rule.from_mapping(self.model_dump(exclude_none=True))
        except RuleError as exc:
            raise ValueError(str(exc)) from None
        return self


class VerifierConfig(_Section):
    """Which checks run on every step, and what happens when one fails."""

    checks: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECKS),
                              description="checks run on every step, in order")
    constants: list[float] = Field(
        default_factory=lambda: list(DEFAULT_CONSTANTS),
        description="numbers a step may use without finding them in the task or evidence "
                    "(unit factors such as 12 months or 1000 are added when the task names the unit)")
    lookup_min_score: float = Field(0.2, ge=0.0, le=1.0, description="lowest evidence score a lookup may rely on")
    retries: int = Field(3, ge=1, le=64, description="proposals tried at one position before backtracking")
    temperatures: list[float] = Field(default_factory=lambda: [0.0, 0.7, 1.0],
                                      description="sampling temperature for try 1, 2, ... (the last repeats)")
    backtracks: int = Field(1, ge=0, le=16, description="verified steps that may be undone in one run")
    max_steps: int = Field(12, ge=1, le=200, description="steps after which an unanswered run stops unverified")
    options: dict[str, Any] = Field(default_factory=dict, description="per-check settings, keyed by check name")
    rules: list[RuleConfig] = Field(
        default_factory=list,
        description="the pipeline's constitution, checked on every step and the final answer; each item is one of "
                    "{forbid_functions: [names]}, {step_must_not_match: regex}, {answer_must_not_match: regex}, "
                    "{answer_range: [low, high]}, with an optional name (docs/reliability.md)")

    @field_validator("temperatures")
    @classmethod
    def _temps(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("must list at least one temperature")
        for t in v:
            if not 0.0 <= t <= 5.0:
                raise ValueError(f"each temperature must be between 0 and 5, got {t}")
        return v


class TelemetryConfig(_Section):
    """OpenTelemetry export: one span per run and one per graph node (``dca.telemetry``)."""

    exporter: Literal["none", "console", "otlp", "memory"] = Field(
        "none", description="where spans go: none, console (stdout), otlp (a collector, over gRPC) or memory (tests)")
    endpoint: str | None = Field(None, description="OTLP collector address, e.g. http://localhost:4317 (exporter otlp)")
    headers: dict[str, str] = Field(default_factory=dict, description="extra OTLP request headers, e.g. an API key")
    insecure: bool = Field(True, description="OTLP without TLS (a collector on localhost or inside the cluster)")
    service_name: str = Field("dca", min_length=1, description="the service.name resource attribute of the spans")


class RunConfig(_Section):
    """Where runs are checkpointed and traced."""

    checkpoint: str | None = Field(".dca/runs.sqlite", description="SQLite file for LangGraph checkpoints (null: in memory)")
    trace_dir: str | None = Field(".dca/traces", description="directory for JSONL run traces (null: no traces)")
    max_graph_steps: int | None = Field(None, ge=10, description="LangGraph recursion limit (default: derived from the budgets)")
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)


class ServeConfig(_Section):
    """``dca serve``: the HTTP server for this pipeline (the command line may override host and port)."""

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0: every interface)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    max_concurrency: int = Field(4, ge=1, le=256, description="runs executed at once; further requests wait their turn")
    warmup: list[str] = Field(default_factory=list,
                              description="tasks run once at start-up, so models are loaded before the first request")


class PipelineConfig(_Section):
    """A whole dca pipeline: the three abilities, the verifier and the run settings."""

    name: str = Field("pipeline", description="a name for this pipeline")
    description: str = Field("", description="free text")
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    logic: LogicConfig = Field(default_factory=LogicConfig)
    wording: WordingConfig = Field(default_factory=WordingConfig)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)


def graph_step_budget(cfg: PipelineConfig) -> int:
    """An upper bound on graph node visits: every attempt is propose + execute + verify."""
    v = cfg.verifier
    return recursion_budget(v.max_steps * v.retries * (v.backtracks + 1) + v.max_steps)


def recursion_budget(attempts: int) -> int:
    """LangGraph node visits ``attempts`` step attempts can take (propose, execute, verify each)."""
    return 3 * attempts + 10


# --------------------------------------------------------------------------- loading


def _line_map(text: str) -> dict[tuple[str | int, ...], int]:
    """Map every key path in a YAML document to its 1-based line number."""
    lines: dict[tuple[str | int, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    if root is not None:
        walk(root, ())
    return lines


def _describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    """A pydantic error as a short expectation: 'must be >= 1, got 0'."""
    t, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    shown = repr(got) if isinstance(got, str) else ("null" if got is None else str(got))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    table = {
        "greater_than_equal": f"must be >= {ctx.get('ge')}, got {shown}",
        "greater_than": f"must be > {ctx.get('gt')}, got {shown}",
        "less_than_equal": f"must be <= {ctx.get('le')}, got {shown}",
        "less_than": f"must be < {ctx.get('lt')}, got {shown}",
        "int_parsing": f"must be an integer, got {shown}",
        "int_type": f"must be an integer, got {shown}",
        "int_from_float": f"must be a whole number, got {shown}",
        "float_parsing": f"must be a number, got {shown}",
        "float_type": f"must be a number, got {shown}",
        "bool_parsing": f"must be true or false, got {shown}",
        "bool_type": f"must be true or false, got {shown}",
        "string_type": f"must be text, got {shown}",
        "string_too_short": f"must have at least {ctx.get('min_length')} characters, got {shown}",
        "string_too_long": f"must have at most {ctx.get('max_length')} characters, got {shown}",
        "list_type": f"must be a list, got {shown}",
        "dict_type": f"must be a mapping of keys to values, got {shown}",
        "model_type": f"must be a mapping of keys to values, got {shown}",
        "model_attributes_type": f"must be a mapping of keys to values, got {shown}",
        "missing": "is required",
        "literal_error": f"must be one of {ctx.get('expected')}, got {shown}",
    }
    if t in table:
        return table[t]
    if t == "value_error":
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    return err["msg"][0].lower() + err["msg"][1:] + (f", got {shown}" if got is not None and t != "extra_forbidden" else "")


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The field names valid at the parent of ``loc`` (for 'did you mean' hints); list items
    (``verifier.rules.0``) are walked into."""
    import typing

    def section(ann: Any) -> Any:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            return ann
        for arg in typing.get_args(ann):  # list[X], X | None
            found = section(arg)
            if found is not None:
                return found
        return None

    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        f = cur.model_fields.get(str(part)) if cur is not None else None
        if f is None:
            return []
        cur = section(f.annotation)
    return list(cur.model_fields) if cur is not None else []


def format_validation_error(exc: ValidationError, *, file: str | None, lines: dict,
                            model: type[BaseModel] = PipelineConfig) -> ConfigError:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(p for p in first["loc"])
    field = ".".join(str(p) for p in loc) or None
    if first["type"] == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _fields_at(model, loc), n=1, cutoff=0.6)
        known = _fields_at(model, loc)
        msg = f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else
                                        (f" (expected one of: {', '.join(known)})" if known else ""))
        parent = ".".join(str(p) for p in loc[:-1])
        field = f"{parent}.{key}" if parent else key
    else:
        msg = _describe(first, model)
    line = None
    for i in range(len(loc), -1, -1):
        if loc[:i] in lines:
            line = lines[loc[:i]]
            break
    return ConfigError(msg, file=file, line=line, field=field, more=len(errors) - 1)


def load_config(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and validate a pipeline YAML file; raise ``ConfigError`` (one line) on any problem."""
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise ConfigError("file not found", file=shown)
    if p.is_dir():
        raise ConfigError("is a directory; expected a YAML file", file=shown)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", file=shown) from None
    return parse_config(text, file=shown, overrides=overrides)


def parse_config(text: str, *, file: str | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Validate YAML text as a ``PipelineConfig``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        if getattr(exc, "context", None):
            problem += f" {exc.context}"
        if mark is not None and context is not None and mark.line >= len(text.splitlines()):
            mark = context  # the file ended inside something opened earlier: point at where it opened
        raise ConfigError(f"invalid YAML: {problem}", file=file,
                          line=(mark.line + 1) if mark else None) from None
    _check_structure(text, file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping of sections (knowledge, logic, ...), "
                          f"got {type(data).__name__}", file=file, line=1)
    if overrides:
        data = _merge(data, overrides)
    lines = _line_map(text)
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, file=file, lines=lines) from None
    problem = semantic_problem(cfg)
    if problem:
        loc, msg = problem
        line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
        raise ConfigError(msg, file=file, line=line, field=".".join(map(str, loc)))
    return cfg


MAX_YAML_NODES = 20_000  # a pipeline file is a few dozen; YAML aliases can expand a small file exponentially


def _check_structure(text: str, file: str | None) -> None:
    """Refuse what YAML loads silently: a key given twice in one mapping (the last would win) and
    aliases that expand into more than ``MAX_YAML_NODES`` nodes."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return
    seen = 0
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack:
        node, path = stack.pop()
        seen += 1
        if seen > MAX_YAML_NODES:
            raise ConfigError(f"the file expands to more than {MAX_YAML_NODES} YAML nodes (aliases?); "
                              f"expected a pipeline of plain sections", file=file, line=1)
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                key = str(k.value)
                where = f"{path}.{key}" if path else key
                if key in first:
                    raise ConfigError(f"duplicate key {key!r} (first given on line {first[key]}); expected each key "
                                      f"once", file=file, line=k.start_mark.line + 1, field=where)
                first[key] = k.start_mark.line + 1
                stack.append((v, where))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, f"{path}.{i}") for i, v in enumerate(node.value))


BUILTIN_KINDS = {"knowledge": {"index", "none"}, "logic": {"lm"}, "wording": {"lm", "template", "none"}}
STRATEGIES = ("greedy", "sample", "self_consistency", "best_of_n", "beam", "mcts", "rstar")


def semantic_problem(cfg: PipelineConfig) -> tuple[tuple[str | int, ...], str] | None:
    """Checks that span fields or need registries: kinds, strategy, check names, termination."""
    for section in ("knowledge", "logic", "wording"):
        kind = getattr(cfg, section).kind
        if kind not in BUILTIN_KINDS[section] and ":" not in kind:
            close = difflib.get_close_matches(kind, sorted(BUILTIN_KINDS[section]), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return (section, "kind"), (f"unknown ability kind {kind!r}; {hint}expected one of "
                                       f"{', '.join(sorted(BUILTIN_KINDS[section]))} or 'package.module:ClassName'")
    if cfg.logic.strategy not in STRATEGIES:
        close = difflib.get_close_matches(cfg.logic.strategy, STRATEGIES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return ("logic", "strategy"), f"unknown strategy {cfg.logic.strategy!r}; {hint}expected one of {', '.join(STRATEGIES)}"
    from dca.verifier import check_factory

    for i, name in enumerate(cfg.verifier.checks):
        if ":" in name:
            continue  # a 'module:attr' check is imported when the pipeline is built, like an ability kind
        try:
            check_factory(name)
        except ValueError as exc:
            return ("verifier", "checks", i), str(exc)
    for loc, name in _model_fields(cfg):
        problem = model_problem(name)
        if problem:
            return loc, problem
    v = cfg.verifier
    attempts = v.max_steps * v.retries * (v.backtracks + 1) + v.max_steps
    if attempts > MAX_ATTEMPTS:
        return ("verifier", "max_steps"), (
            f"max_steps x retries x (backtracks + 1) allows {attempts} step attempts in one run; "
            f"expected at most {MAX_ATTEMPTS}, so that a run that cannot find an answer ends")
    limit = cfg.run.max_graph_steps
    if limit is not None and limit < graph_step_budget(cfg):
        return ("run", "max_graph_steps"), (
            f"must be >= {graph_step_budget(cfg)} (what verifier.max_steps, retries and backtracks can use), "
            f"got {limit}: runs would be cut off before they can finish")
    return None


MAX_ATTEMPTS = 10_000  # step attempts one run may make: beyond this a failing run effectively never ends


def _model_fields(cfg: PipelineConfig) -> list[tuple[tuple[str, ...], str]]:
    """The model names a pipeline will load, with their field paths."""
    out = []
    if cfg.logic.kind == "lm":
        out.append((("logic", "model"), cfg.logic.model))
    if cfg.wording.kind == "lm":
        out.append((("wording", "model"), cfg.wording.model))
    if cfg.logic.scorer and not cfg.logic.scorer.startswith("dca:"):
        out.append((("logic", "scorer"), cfg.logic.scorer))
    return out


def model_problem(name: str) -> str | None:
    """Why ``name`` cannot be loaded as a model, or None: an unknown ``dca:`` recipe, a missing or
    pickle-only directory, or (hub offline) a hub name that is not in the local cache."""
    if name.startswith("dca:"):
        from dca.models.recipes import RECIPES

        if name[4:] in RECIPES:
            return None
        close = difflib.get_close_matches(name[4:], list(RECIPES), n=1)
        hint = f"did you mean 'dca:{close[0]}'? " if close else ""
        return f"unknown dca model {name!r}; {hint}expected one of {', '.join('dca:' + r for r in RECIPES)}"
    path = Path(name).expanduser()
    if path.is_dir():
        from dca.models.registry import ModelError, _check_directory as check_model_directory

        try:
            check_model_directory(path)
        except ModelError as exc:
            return str(exc)
        return None
    if path.exists():
        return f"{name!r} is a file; expected a model directory (save_pretrained) or a model name"
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        return f"model directory {name!r} not found"
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
                  for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    if offline and not _in_hub_cache(name):
        return (f"model {name!r} not found: not a dca:<recipe> name, not a directory, and not in the local "
                f"hub cache (the hub is offline)")
    return None


def _in_hub_cache(name: str) -> bool:
    home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    cache = Path(os.environ.get("HF_HUB_CACHE") or home / "hub").expanduser()
    return (cache / ("models--" + name.replace("/", "--"))).is_dir()


def with_line(err: ConfigError) -> ConfigError:
    """``err`` with its line filled in from its file when it names a file and a field but no line
    (errors found while building abilities, after the file was read)."""
    if err.line or not err.file or not err.field:
        return err
    try:
        lines = _line_map(Path(err.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return err
    loc = tuple(int(p) if p.isdigit() else p for p in err.field.split("."))
    line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
    if line is None:
        return err
    return ConfigError(err.message, file=err.file, line=line, field=err.field, more=err.more)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def dotted_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["logic.strategy=beam", "knowledge.top_k=8"]`` -> nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} must look like section.key=value")
        key, _, raw = pair.partition("=")
        cur = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        try:
            cur[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            cur[parts[-1]] = raw
    return out
