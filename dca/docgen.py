"""Reference docs generated from the code, so they cannot drift from it.

    dca docs config            # writes docs/config.md from dca.config.PipelineConfig
    dca docs api               # writes docs/api.md from the public API's signatures and docstrings
    python -m dca.docgen all --check   # exit 1 if either file is stale (CI)

The config reference lists every YAML field with its type, default, constraints and description;
the API reference lists the public classes and functions with their signatures and docstrings.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"config": ROOT / "docs" / "config.md", "api": ROOT / "docs" / "api.md"}


# --------------------------------------------------------------------------- config reference


def type_name(ann: Any) -> str:
    """A YAML-reader's name for a field type: ``integer``, ``text or null``, ``one of: a, b``."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is Literal:
        return "one of: " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {_plural(type_name(args[0]))}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}" if args and args[1] is not Any else "mapping"
    names = {str: "text", int: "integer", float: "number", bool: "true or false", Any: "any value"}
    if ann in names:
        return names[ann]
    return getattr(ann, "__name__", str(ann))


def _plural(name: str) -> str:
    return {"text": "texts", "integer": "integers", "number": "numbers"}.get(name, name)


def constraints(field: Any, ann: Any) -> list[str]:
    """The field's bounds as text (``1 to 100``, ``>= 0``, ``3 to 63 characters``)."""
    bounds: dict[str, Any] = {}
    for m in field.metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if getattr(m, attr, None) is not None:
                bounds[attr] = getattr(m, attr)
    out: list[str] = []
    if "ge" in bounds and "le" in bounds:
        out.append(f"{bounds['ge']} to {bounds['le']}")
    else:
        out += [f"{sym} {bounds[attr]}" for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
                if attr in bounds]
    lo, hi = bounds.get("min_length"), bounds.get("max_length")
    unit = "items" if typing.get_origin(ann) is list else "characters"
    if lo is not None and hi is not None:
        out.append(f"{lo} to {hi} {unit}")
    elif lo == 1:
        out.append("not empty")
    elif lo is not None:
        out.append(f"at least {lo} {unit}")
    elif hi is not None:
        out.append(f"at most {hi} {unit}")
    return out


def yaml_value(value: Any) -> str:
    """A default as it would be written in YAML (inline)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _default(field: Any) -> Any:
    return field.default_factory() if field.default_factory is not None else field.default


def _is_section(ann: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _allowed_values() -> dict[str, str]:
    """Values checked outside the schema (by ``dca.config.semantic_problem``), listed with their fields."""
    from dca.config import BUILTIN_KINDS, STRATEGIES
    from dca.verifier import CHECKS

    out = {f"{s}.kind": "built-in: " + ", ".join(f"`{k}`" for k in sorted(kinds)) + "; or `package.module:ClassName`"
           for s, kinds in BUILTIN_KINDS.items()}
    out["logic.strategy"] = "one of: " + ", ".join(f"`{s}`" for s in STRATEGIES)
    builtin = [name for name, factory in CHECKS.items() if getattr(factory, "__module__", "").startswith("dca.")]
    out["verifier.checks"] = ("each one of: " + ", ".join(f"`{c}`" for c in builtin)
                              + "; or a name registered with `dca.verifier.register_check`, "
                                "or `package.module:ClassName`")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sections(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, model)`` for a model and every section nested in it, depth first."""
    out = [(prefix, model)]
    for name, field in model.model_fields.items():
        if _is_section(field.annotation):
            out.extend(_sections(field.annotation, f"{prefix}{name}."))
    return out


def render_config() -> str:
    """The whole config reference (Markdown) for ``PipelineConfig``."""
    import yaml

    from dca.config import PipelineConfig

    allowed = _allowed_values()
    lines = [
        "# Pipeline configuration reference",
        "",
        "<!-- Generated from dca.config.PipelineConfig by `dca docs config`; do not edit by hand. -->",
        "",
        "A pipeline is one YAML file (`dca ask --config my.yaml`, `dca.Pipeline.from_yaml(\"my.yaml\")`).",
        "Every field has a default, so a file names only what it changes; an unknown key, a wrong type",
        "or a value out of range stops loading with one line naming the file, the line and the field",
        "(`configs/x.yaml:12 knowledge.top_k: must be >= 1, got 0`). Any field can be overridden on",
        "the command line: `--set logic.strategy=beam --set knowledge.top_k=8`.",
        "",
        "Sections: " + ", ".join(f"[`{p.rstrip('.')}`](#{p.rstrip('.').replace('.', '')})"
                                  for p, _ in _sections(PipelineConfig) if p) + ".",
        "",
    ]
    for prefix, model in _sections(PipelineConfig):
        title = prefix.rstrip(".") or "top level"
        lines += [f"## {title}" if prefix else "## Top level", ""]
        doc = inspect.getdoc(model) or ""
        if doc:
            lines += [doc.replace("``", "`"), ""]
        lines += ["| field | type | default | constraints | description |", "|---|---|---|---|---|"]
        for name, field in model.model_fields.items():
            path = f"{prefix}{name}"
            ann = field.annotation
            if _is_section(ann):
                lines.append(f"| `{path}` | section | | | see [{path}](#{path.replace('.', '')}) |")
                continue
            limits = constraints(field, ann)
            if path in allowed:
                limits.append(allowed[path])
            default = f"`{_cell(yaml_value(_default(field)))}`"
            lines.append(f"| `{path}` | {_cell(type_name(ann))} | {default} | {_cell('; '.join(limits))} | "
                         f"{_cell(field.description or '')} |")
        lines.append("")
    defaults = yaml.safe_dump(PipelineConfig().model_dump(), sort_keys=False, default_flow_style=None, width=100)
    lines += ["## Every default, as YAML", "",
              "Copy this as a starting point and delete what you do not change.", "", "```yaml",
              defaults.rstrip(), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- API reference

# (module, name, methods shown) — the names a user meets, in the order a reader needs them.
API: list[tuple[str, list[tuple[str, str, list[str] | None]]]] = [
    ("Agents and pipelines", [
        ("dca.agent", "Agent", ["run", "stream", "arun", "astream", "resume", "result", "close"]),
        ("dca.pipeline", "Pipeline", ["from_yaml", "from_text", "run", "stream", "arun", "astream", "resume"]),
        ("dca.agent", "RunNotFound", []),
        ("dca.config", "ConfigError", []),
    ]),
    ("What a run returns", [
        ("dca.types", "Result", []),
        ("dca.types", "Event", []),
        ("dca.types", "Step", []),
        ("dca.types", "Evidence", ["cite"]),
        ("dca.types", "Verdict", ["passed", "failed"]),
        ("dca.types", "Compute", []),
    ]),
    ("Abilities (plug in your own)", [
        ("dca.abilities", "Knowledge", ["retrieve"]),
        ("dca.abilities", "Logic", ["propose"]),
        ("dca.abilities", "Wording", ["word"]),
        ("dca.abilities", "ProposeRequest", []),
        ("dca.abilities", "Proposal", []),
    ]),
    ("Tools, checks and task families", [
        ("dca.tools", "tool", None),
        ("dca.verifier", "Verifier", ["check_step", "check_wording", "add_check"]),
        ("dca.verifier", "Check", []),
        ("dca.verifier", "CheckContext", []),
        ("dca.verifier", "register_check", None),
        ("dca.verifier", "FailurePolicy", []),
        ("dca.reasoning.tasks.base", "TaskFamily", ["problems", "score"]),
        ("dca.reasoning.tasks.base", "Problem", []),
        ("dca.reasoning.tasks.base", "register_family", None),
        ("dca.reasoning.tasks.base", "get_family", None),
    ]),
    ("Observability and serving", [
        ("dca.telemetry", "Telemetry", ["of", "finished_spans", "flush", "shutdown"]),
        ("dca.serve", "create_app", None),
        ("dca.serve", "running_server", None),
        ("dca.serve", "run_server", None),
        ("dca.serve", "parse_sse", None),
    ]),
]

_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-f]+>")


class _Source(str):
    """An annotation kept as its source text (``from __future__ import annotations``), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def signature(obj: Any, *, bound: bool = False) -> str:
    """A signature as it reads in code: annotations unquoted, no memory addresses, ``self``/``cls``
    dropped for methods (``bound``), one parameter per line when it is long."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())
    if bound and params and params[0].name in ("self", "cls"):
        params = params[1:]
    clean = lambda a: a if a is inspect.Parameter.empty else _Source(  # noqa: E731
        a.strip("'\"") if isinstance(a, str) else inspect.formatannotation(a))
    params = [p.replace(annotation=clean(p.annotation)) for p in params]
    sig = sig.replace(parameters=params, return_annotation=clean(sig.return_annotation))
    text = _ADDRESS.sub("<default>", str(sig))
    if len(text) <= 100:
        return text
    close = text.rindex(")")
    return "(\n    " + ",\n    ".join(_split_top_level(text[1:close])) + ",\n)" + text[close + 1:]


def _split_top_level(text: str) -> list[str]:
    """Split a parameter list at the commas that are not inside brackets or quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _doc(obj: Any) -> str:
    return inspect.getdoc(obj) or ""


def _fields(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return [f"- `{f.name}: {_short_type(hints.get(f.name, f.type))}`" for f in dataclasses.fields(cls)]
    return []


def _short_type(ann: Any) -> str:
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", None) or str(ann)
    return re.sub(r"\b(?:typing|dca\.\w+(?:\.\w+)*)\.", "", str(text)).replace("NoneType", "None")


def _routes() -> list[str]:
    from dca.agent import Agent
    from dca.serve import create_app

    class _Never:  # routes are read from the app; no run happens
        def propose(self, request):  # pragma: no cover
            return []

    app = create_app(Agent(logic=_Never()))
    rows = ["| method | path | what it does |", "|---|---|---|"]
    for route in app.routes:
        methods = sorted(getattr(route, "methods", None) or [])
        endpoint = getattr(route, "endpoint", None)
        if not methods or endpoint is None or route.path.startswith(("/docs", "/openapi", "/redoc")):
            continue
        rows.append(f"| {', '.join(m for m in methods if m != 'HEAD')} | `{route.path}` | {_SERVE_DOCS[route.path]} |")
    return rows


_SERVE_DOCS = {
    "/health": "liveness, runs in flight, requests served and failed, warm-up time",
    "/run": "body `{\"task\": ..., \"thread_id\": null}`; runs the task, returns the `Result` as JSON",
    "/stream": "same body; `text/event-stream`, one server-sent event per graph event (`event: <kind>`), "
               "the last one `done` with the `Result`",
    "/resume/{thread_id}": "finishes an interrupted run from its checkpoint; 404 if the thread has none",
    "/threads/{thread_id}": "the checkpointed `Result` of a thread (and whether it is still running)",
}


def render_api() -> str:
    """The API reference (Markdown) for the names in ``API``."""
    lines = [
        "# Python API reference",
        "",
        "<!-- Generated from the code's signatures and docstrings by `dca docs api`; do not edit by hand. -->",
        "",
        "Everything a user needs is importable from `dca` (`dca.Agent`, `dca.Pipeline`, `dca.Result`,",
        "`dca.tool`, ...) or from the module named in each heading. The tutorial",
        "([tutorial.md](tutorial.md)) shows them working together; the YAML fields are in",
        "[config.md](config.md).",
        "",
    ]
    for title, entries in API:
        lines += [f"## {title}", ""]
        for module_name, name, methods in entries:
            obj = getattr(importlib.import_module(module_name), name)
            kind = "class" if inspect.isclass(obj) else ("async def" if inspect.iscoroutinefunction(obj) else "def")
            sig = "" if inspect.isclass(obj) and issubclass(obj, BaseException) else signature(obj)
            lines += [f"### `{module_name}.{name}`", "", "```python", f"{kind} {name}{sig}", "```", ""]
            doc = _doc(obj)
            if doc:
                lines += [doc, ""]
            fields = _fields(obj) if inspect.isclass(obj) else []
            if fields:
                lines += ["Fields:", "", *fields, ""]
            for meth in methods or []:
                member = inspect.getattr_static(obj, meth)
                fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if isinstance(fn, property):
                    fn = fn.fget
                prefix = "async def" if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn) else "def"
                if isinstance(member, classmethod):
                    prefix = "@classmethod\n" + prefix
                bound = not isinstance(member, staticmethod)
                code = f"{prefix} {meth}{signature(fn, bound=bound)}"
                lines += [f"#### `{name}.{meth}`", "", "```python", code, "```", ""]
                if _doc(fn):
                    lines += [_doc(fn), ""]
    lines += ["## HTTP endpoints (`dca serve`)", "", *_routes(), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command


RENDERERS = {"config": render_config, "api": render_api}


def write_docs(target: str, *, out: str | Path | None = None, check: bool = False) -> int:
    """Write (or with ``check``, compare) one generated document; returns a process exit code."""
    names = list(RENDERERS) if target == "all" else [target]
    if out is not None and len(names) > 1:
        raise ValueError("--out needs a single target (config or api)")
    stale = []
    for name in names:
        path = Path(out) if out is not None else TARGETS[name]
        text = RENDERERS[name]()
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(f"{path} is stale; regenerate it with `dca docs {name}`")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    for line in stale:
        print(line, file=sys.stderr)
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m dca.docgen config|api|all [--check] [--out FILE]``: the same as ``dca docs``."""
    from dca.cli import main as cli_main

    return cli_main(["docs", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
