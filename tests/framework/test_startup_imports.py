"""Start-up: ``import dca`` and ``dca --help`` load no heavy library and stay fast."""
from __future__ import annotations

import json
import subprocess
import sys
import time

HEAVY = ("torch", "transformers", "sentence_transformers", "llama_index", "chromadb", "langgraph")


def _loaded_after(code: str) -> list[str]:
    probe = (code + "\nimport sys, json\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_dca_loads_no_heavy_library():
    assert _loaded_after("import dca") == []


def test_public_names_and_the_cli_parser_load_no_heavy_library():
    code = ("import dca, retrieval\n"
            "names = [dca.Agent, dca.Pipeline, dca.Result, dca.Event, dca.tool, dca.Verifier, dca.Knowledge]\n"
            "import dca.cli; dca.cli.build_parser()\n"
            "import dca.telemetry, dca.docgen")
    assert _loaded_after(code) == []


def _best_of(cmd: list[str], n: int = 5) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def test_dca_help_is_fast():
    bare = _best_of([sys.executable, "-c", "pass"])
    help_time = _best_of([sys.executable, "-m", "dca.cli", "--help"])
    # The target is 0.5 s on the development machines; a loaded CI machine is allowed the
    # slowdown it shows on a bare interpreter start as well.
    assert help_time < max(0.5, 0.5 * bare / 0.05), f"dca --help took {help_time:.2f} s (bare python {bare:.2f} s)"
