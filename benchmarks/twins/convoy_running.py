# The twin of programs/convoy_running.mv in plain Python (runs on Python 2.7 and 3.x).
from __future__ import print_function

import threading
import time

CPU_THREADS = 1
ROUNDS = 30
done = [False]


def spin():
    n = 0
    while not done[0]:
        n += 1
    return n


def io_thread(out):
    late = []
    for _ in range(ROUNDS):
        asked = time.time()
        time.sleep(0.002)
        late.append(time.time() - asked - 0.002)
    done[0] = True
    out.extend(late)


workers = [threading.Thread(target=spin) for _ in range(CPU_THREADS)]
for w in workers:
    w.start()
late = []
io = threading.Thread(target=io_thread, args=(late,))
io.start()
io.join()
for w in workers:
    w.join()
late.sort()
print("median_us", int(late[len(late) // 2] * 1e6), "worst_us", int(late[-1] * 1e6))
