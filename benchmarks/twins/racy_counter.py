# The twin of programs/racy_counter.mv in plain Python (runs on Python 2.7 and 3.x).
from __future__ import print_function

import threading

N = 200000
counter = [0]


def work():
    for _ in range(N):
        counter[0] += 1


threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("lost", 2 * N - counter[0])
