"""A seal around code that must run nothing outside dca's allowlist: while it is on, ``eval``,
``exec``, compiling to code, opening files, starting processes and opening sockets raise
``Breach`` and are recorded; leaving the block fails if anything was attempted."""
from __future__ import annotations

import ast
import builtins
import contextlib
import io
import os
import socket
import subprocess
from pathlib import Path

from reliability_corpus import SENTINEL


class Breach(AssertionError):
    """Something outside the allowlist was about to run."""


@contextlib.contextmanager
def sealed():
    """Every way out of the interpreter raises ``Breach`` and is recorded while the block runs."""
    calls: list[str] = []
    real_compile = builtins.compile

    def trap(what):
        def refuse(*args, **kwargs):
            calls.append(what)
            raise Breach(f"{what} was called")
        return refuse

    def parse_only(source, filename, mode, flags=0, *args, **kwargs):  # ast.parse is compile(..., ONLY_AST)
        if not flags & ast.PyCF_ONLY_AST:
            calls.append("compile")
            raise Breach("compile to code was called")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    patches = [(builtins, "eval", trap("eval")), (builtins, "exec", trap("exec")), (builtins, "open", trap("open")),
               (builtins, "compile", parse_only), (io, "open", trap("io.open")), (os, "open", trap("os.open")),
               (os, "system", trap("os.system")), (os, "popen", trap("os.popen")),
               (subprocess, "Popen", trap("subprocess.Popen")), (socket.socket, "connect", trap("socket.connect")),
               (socket, "create_connection", trap("socket.create_connection")),
               (socket, "getaddrinfo", trap("socket.getaddrinfo"))]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, fake in patches:
        setattr(obj, name, fake)
    try:
        yield calls
    finally:
        for obj, name, real in saved:
            setattr(obj, name, real)
    assert not calls, f"escaped the allowlist: {calls}"
    assert not Path(SENTINEL).exists()
