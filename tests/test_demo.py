"""``dca demo`` end to end on real report pages, with micro LM models (``--reasoner lm``) so it runs
in seconds; the docqa agent the demo uses by default is tested in tests/docqa."""
from __future__ import annotations

import json
import subprocess
import sys


def test_demo_indexes_real_pages_and_answers_with_steps(tmp_path, data_dir, micro_models):
    work = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "dca.cli", "demo", "--questions", "2", "--workdir", str(work),
                           "--json", "--reasoner", "lm", "--policy", micro_models["policy"],
                           "--wording", micro_models["wording"]],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pages = sorted(p.name for p in (work / "docs").glob("*.md"))
    assert len(pages) == 2
    assert "2 added" in proc.stdout  # the index report
    rows = json.loads((work / "demo_results.json").read_text())
    assert [r["family"] for r in rows] == ["tatqa", "finqa"]
    for row in rows:
        assert row["status"] in ("verified", "unverified") and row["question"] in proc.stdout
        assert row["correct"] is False or row["status"] == "verified"
    assert "Steps:" in proc.stdout and "Sources:" in proc.stdout
    # a second run reuses the store: nothing re-indexed
    again = subprocess.run([sys.executable, "-m", "dca.cli", "demo", "--questions", "2", "--workdir", str(work),
                            "--reasoner", "lm",
                            "--policy", micro_models["policy"], "--wording", micro_models["wording"]],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "2 unchanged" in again.stdout, again.stdout[-2000:]
    # fewer questions: the page no longer asked about leaves the folder and the store; a file the
    # demo did not write stays
    (work / "docs" / "mine.md").write_text("# My notes\n\nRevenue grew 5 % in 2019.\n")
    fewer = subprocess.run([sys.executable, "-m", "dca.cli", "demo", "--questions", "1", "--workdir", str(work),
                            "--reasoner", "lm",
                            "--policy", micro_models["policy"], "--wording", micro_models["wording"]],
                           capture_output=True, text=True, timeout=600)
    assert fewer.returncode == 0 and "1 added, 0 updated, 1 unchanged, 1 removed" in fewer.stdout, \
        fewer.stdout[-2000:]
    tatqa_page = [name for name in pages if "_page_" not in name]  # FinQA pages are named <ticker>_<year>_page_<n>
    assert sorted(p.name for p in (work / "docs").glob("*.md")) == sorted(tatqa_page + ["mine.md"])
