"""A scripted reasoner that stalls at one position while a marker file is absent: the process
running it can be killed mid-run at a known point (``DCA_STALL_MARKER`` names the file)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from helpers_abilities import ScriptedLogic

from dca.abilities import Proposal, ProposeRequest


class StallingLogic(ScriptedLogic):
    def __init__(self, script: list[list[str]], stall_at: int = 2):
        super().__init__(script)
        self.stall_at = stall_at

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        marker = os.environ.get("DCA_STALL_MARKER")
        if marker and len(request.steps) == self.stall_at and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            time.sleep(120)  # killed here
        return super().propose(request)
