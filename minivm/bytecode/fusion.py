"""Superinstructions: common instruction sequences fused into one dispatch.

Placeholder pass: returns the plain instructions; fused forms are added where measured.
"""

from __future__ import annotations

from minivm.bytecode.code import CodeObject


def fuse(code: CodeObject) -> tuple[tuple[int, object], ...]:
    """The fast form of ``code``: same length and offsets as ``code.instructions``."""
    return tuple(code.instructions)
