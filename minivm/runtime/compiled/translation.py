"""Translation: a code object's host source, compiled once and shared by every run.

``translate(code)`` generates the source (``codegen``), compiles it with the host's
``compile`` and keeps the result in the code object's ``tier`` slot, so each function is
translated once per process, lazily, the first time it is called. What the translator
cannot handle (``structure.Unsupported``), and source the host refuses to compile (CPython
allows 20 statically nested blocks and 100 levels of indentation), gives a ``Fallback``:
that function runs on the interpreter.

A translation is machine-independent: ``instantiate`` executes it in a namespace that holds
one machine's globals, heap and check (``engine.py``), which makes the host function.
Host code objects are registered by their unique file name, so a host frame or traceback
entry can be recognised as generated and mapped back to the guest (``frames.py``).
"""

from __future__ import annotations

import itertools
import threading
import warnings
import weakref

from minivm.bytecode.code import CodeObject
from minivm.runtime.compiled.codegen import Generated, LineInfo, generate
from minivm.runtime.compiled.structure import Unsupported

_COUNTER = itertools.count(1)
_LOCK = threading.Lock()
# Host file name of a generated function -> its Translation (weakly: dies with its code).
REGISTRY: weakref.WeakValueDictionary[str, Translation] = weakref.WeakValueDictionary()


class Translation:
    """The compiled host source of one code object.

    ``lines[n]`` is the ``LineInfo`` of host line ``n``; ``sites`` the call sites
    ``(pc, argument count)``; ``host_code`` the compiled module that defines the function
    called ``function_name`` when executed.
    """

    def __init__(self, code: CodeObject, generated: Generated, filename: str, host_code):
        self.code = code
        self.source = generated.source
        self.lines: tuple[LineInfo | None, ...] = generated.lines
        self.sites = generated.sites
        self.constants = generated.constants
        self.function_name = generated.function_name
        self.local_names = generated.local_names
        self.filename = filename
        self.host_code = host_code

    def line(self, lineno: int) -> LineInfo:
        """The ``LineInfo`` of a host line number (from a frame or a traceback)."""
        return self.lines[lineno]


class Fallback:
    """A code object the compiled tier leaves to the interpreter, and why."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"Fallback({self.reason!r})"


def translate(code: CodeObject) -> Translation | Fallback:
    """The translation of ``code`` (made on the first call, then cached on the code object)."""
    done = code.tier
    if done is not None:
        return done
    with _LOCK:
        done = code.tier
        if done is None:
            done = _translate(code)
            object.__setattr__(code, "tier", done)
    return done


def _translate(code: CodeObject) -> Translation | Fallback:
    try:
        generated = generate(code)
    except Unsupported as exc:
        return Fallback(str(exc))
    except RecursionError:
        return Fallback("nested too deeply to translate")
    filename = f"<minivm {code.display_name} {code.file}:{code.first_line} #{next(_COUNTER)}>"
    try:
        with warnings.catch_warnings():
            # `(5)[0]` fails when it runs, as the guest's own `5[0]` does; the host's compiler
            # would warn about it on standard error first.
            warnings.simplefilter("ignore", SyntaxWarning)
            host_code = compile(generated.source, filename, "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
        # CPython's own limits: "too many statically nested blocks", deep indentation.
        return Fallback(f"the host cannot compile it: {exc}")
    translation = Translation(code, generated, filename, host_code)
    REGISTRY[filename] = translation
    return translation


def instantiate(translation: Translation, namespace: dict) -> object:
    """Make the host function of ``translation`` in ``namespace`` (one machine's globals,
    heap, check and call-site caches) and return it."""
    namespace.update(translation.constants)
    exec(translation.host_code, namespace)
    return namespace[translation.function_name]


def translation_of_host_code(host_code) -> Translation | None:
    """The translation a host code object (of a frame or traceback entry) was generated
    from, or None if it is not generated code."""
    return REGISTRY.get(host_code.co_filename)
