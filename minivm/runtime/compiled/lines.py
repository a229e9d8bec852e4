"""Host lines and what each one is to the guest: the table that maps generated code back.

Every line of generated source has a ``LineInfo``: the guest instruction it belongs to, and
whatever a reader of a paused or failed host frame needs at that line (``frames.py``).
"""

from __future__ import annotations


class LineInfo:
    """What one host line is, for the guest.

    ``pc``: the instruction it belongs to. ``adjust``: the interpreter's tick count there is
    the host ``budget`` plus ``adjust`` (an instruction that fails has been counted).
    ``kind``: ``code``; ``global`` (reads global ``name``: a ``KeyError`` there is the guest's
    ``undefined variable``); ``check`` or ``call`` (a frame may pause there: ``temps`` are the
    host locals holding its stack, ``frame_pc`` what the interpreter's frame would hold as its
    pc); ``entry`` (the recursion test, which fails on behalf of the caller).
    """

    __slots__ = ("adjust", "frame_pc", "kind", "name", "pc", "temps")

    def __init__(
        self, pc: int, adjust: int = 0, kind: str = "code", name: str = "",
        temps: tuple[str, ...] = (), frame_pc: int = 0,
    ):  # fmt: skip
        self.pc = pc
        self.adjust = adjust
        self.kind = kind
        self.name = name
        self.temps = temps
        self.frame_pc = frame_pc

    def __repr__(self) -> str:
        return f"LineInfo(pc={self.pc}, adjust={self.adjust}, kind={self.kind!r}, temps={self.temps})"


class Writer:
    """Lines of host source with their ``LineInfo``, at the current indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.infos: list[LineInfo] = []
        self.indent = 0

    def line(self, text: str, info: LineInfo, indent: int = 0) -> None:
        """Append a line at the current indentation plus ``indent``."""
        self.lines.append("    " * (self.indent + indent) + text)
        self.infos.append(info)

    def insert(self, at: int, text: str, info: LineInfo, indent: int = 0) -> None:
        """A line before line ``at`` (a ``mark``), at the current indentation plus ``indent``."""
        self.lines.insert(at, "    " * (self.indent + indent) + text)
        self.infos.insert(at, info)

    def mark(self) -> int:
        """Where the next line goes (for ``insert`` and ``truncate``)."""
        return len(self.lines)

    def truncate(self, mark: int) -> None:
        """Forget the lines written since ``mark`` (a trial run that only measured)."""
        del self.lines[mark:]
        del self.infos[mark:]
