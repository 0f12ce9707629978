"""release_free_heap gives freed heap memory back: the resident set, seen by the kernel, drops."""

from __future__ import annotations

import subprocess
import sys

# A child process, so that the measure is not blurred by the test runner's own heap. Blocks
# of 1 KB come from the C heap (not Python's small-object pools); the survivor allocated
# last keeps the heap's top in place, so freeing the others returns nothing by itself.
_CHILD = """
import sys
from controller.repository.heap import release_free_heap

def resident_mib():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) // 1024

blocks = [bytearray(1000) for _ in range(150_000)]
survivor = bytearray(1000)
del blocks
freed = resident_mib()
release_free_heap()
print(freed, resident_mib())
"""


def test_freed_heap_pages_leave_the_resident_set() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], check=True, capture_output=True, text=True)
    freed, released = map(int, done.stdout.split())
    assert freed - released >= 100, (freed, released)  # of the ~150 MiB freed
