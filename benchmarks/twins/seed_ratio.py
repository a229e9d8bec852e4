# The twin of programs/seed_ratio.mv in plain Python (runs on Python 2.7 and 3.x): two
# CPU-bound countdowns in two threads against the same work in sequence; prints
# threaded/sequential x 100. An argument sets CPython 2's check interval.
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


t0 = time.time()
work(N)
work(N)
seq = time.time() - t0
t1 = time.time()
threads = [threading.Thread(target=work, args=(N,)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(int(100 * (time.time() - t1) / seq))
