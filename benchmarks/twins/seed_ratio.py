# The twin of programs/seed_ratio.mv in plain Python (runs on Python 2.7 and 3.x): two
# CPU-bound countdowns in two threads against the same work in sequence; prints
# threaded/sequential x 100, each side the best of three rounds taken in turns. An argument
# sets CPython 2's check interval.
from __future__ import print_function

import sys
import threading
import time

N = 3000000
if len(sys.argv) > 1 and hasattr(sys, "setcheckinterval"):
    sys.setcheckinterval(int(sys.argv[1]))


def work(n):
    while n > 0:
        n -= 1
    return n


best_sequential = best_threaded = None
for _ in range(3):
    t0 = time.time()
    work(N)
    work(N)
    sequential = time.time() - t0
    t1 = time.time()
    threads = [threading.Thread(target=work, args=(N,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    threaded = time.time() - t1
    if best_sequential is None or sequential < best_sequential:
        best_sequential = sequential
    if best_threaded is None or threaded < best_threaded:
        best_threaded = threaded
print(int(100 * best_threaded / best_sequential))
