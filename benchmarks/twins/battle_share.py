# CPython 2's own GIL battle, seen from Python (the twin of the `ticks` battle figure): two
# threads spin, and each notes when the other has run since its own last iteration. Every
# such change of owner is a battle the waiter won; every check (each 100 ticks, the default
# `sys.setcheckinterval`) with the other thread waiting is a battle. Prints the releaser's
# share of battles, in percent.
#
# Ticks per iteration: CPython 2.7's ceval.c counts a tick for each opcode that ends with
# `continue` and none for those that end with FAST_DISPATCH / `goto fast_next_opcode` or are
# reached by PREDICT. The loop below is LOAD_GLOBAL True (tick), POP_JUMP_IF_FALSE (fast),
# LOAD_FAST, LOAD_CONST (fast), INPLACE_ADD (tick), STORE_FAST (fast), LOAD_GLOBAL owner
# (tick), LOAD_CONST (fast), BINARY_SUBSCR (tick), LOAD_FAST (fast), COMPARE_OP (predicted,
# no tick) and POP_JUMP_IF_FALSE back to the top (fast): 4 ticks. Runs on 2.7 only (3.2 and
# later have no tick count); elsewhere it prints nothing.
from __future__ import print_function

import sys
import threading
import time

TICKS_PER_ITERATION = 4
SECONDS = 1.0

if not hasattr(sys, "getcheckinterval") or sys.version_info[0] != 2:
    sys.exit(0)

owner = [None]
switches = [0]
iterations = [0]
stop = time.time() + SECONDS


def worker(me):
    n = 0
    won = 0
    while True:
        n += 1
        if owner[0] is not me:
            owner[0] = me
            won += 1
            if time.time() > stop:
                break
    switches[0] += won
    iterations[0] += n


threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
checks = iterations[0] * TICKS_PER_ITERATION / float(sys.getcheckinterval())
print("%.3f" % (100.0 * (1 - switches[0] / checks)))
