"""The compiled tier: guest functions translated to host Python functions.

Design note
-----------
The interpreter pays one dispatch (100-140 ns) per instruction and about 1 us per guest call.
This tier removes both: each code object is translated, once and lazily on its first call,
into the source of one host function (``compile`` + ``exec``), shared by every thread and
every run; the operand stack becomes host locals (the verifier knows the depth at every
instruction), guest locals become host locals, cells stay cells, and globals are read from
the globals dict by every instruction that names them. Guest calls are host calls.

What must not change is *when threads switch*. Every instruction still costs one tick, and
the check (``TickCheck.at_check``, where the lock policy decides) is reached before exactly
the instruction at which the interpreter reaches it, with the same tick count: straight-line
blocks charge their length on entry and run a *fast* copy when the whole block fits in the
budget, else a *slow* copy that counts instruction by instruction and calls the check where
the budget runs out. The host thread blocks inside that call when the policy hands the GIL
away and simply resumes there, so nothing is ever de-optimised. ``tests/test_compiled.py``
checks that both engines make the same checks, at the same instructions, at every interval.

Modules, in pipeline order:

* ``structure`` — block discovery: if/else, loops, and/or read back from the bytecode's
  layout; anything else is ``Unsupported`` (the function stays interpreted).
* ``emitter`` — one copy of one block: a simulated stack of host expressions, one template
  per opcode.
* ``units`` — a node sequence cut into blocks, each with the control that ends it.
* ``regions`` — several blocks (a loop's whole iteration) charged with one budget test.
* ``codegen`` — the host function: blocks and their copies, control flow, call sites, and
  the table mapping each host line to its guest ``pc``.
* ``translation`` — compile once per code object, cache it on the code object, fall back.
* ``frames`` — guest frames read off the host stack (heap roots, checks) and off tracebacks
  (error call chains, exact tick counts).
* ``engine`` — the machine's side: the namespace host functions run in, call resolution and
  call-site caches, running a thread.

The idea and its measured figures come from a prototype (``docs/performance.md``); the
approach is the one of CPython's own copy-and-patch and of the "baseline compilers" of JS
engines: keep the interpreter's semantics instruction for instruction, remove its dispatch.
"""

from minivm.runtime.compiled.engine import CompiledEngine
from minivm.runtime.compiled.translation import Fallback, Translation, translate

__all__ = ["CompiledEngine", "Fallback", "Translation", "translate"]
