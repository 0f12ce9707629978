"""Give the heap memory a process has freed back to the kernel.

glibc keeps freed memory in its heaps (one for each thread that allocates) for reuse, and
raises its mmap threshold after the first large free, so big short-lived buffers end up in
those heaps and stay in the resident set:
- the buffers of loaded index files (tens of MiB at a million blobs) sit under the index
  records that outlive them: at a million blobs that was 23 MiB of a restore's peak;
- a backup passes compressed chunks through five threads' heaps (packs, sealed blobs and
  file reads go to buffers that are kept and reused): before those buffers, the app
  dataset's first backup peaked at 250-300 MiB for 130 MiB in use.
`malloc_trim` returns those pages. It is called through ctypes because no library wraps
it; where the C library has no `malloc_trim` (not glibc), nothing is done.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process already runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _find_malloc_trim()


def release_free_heap() -> None:
    """Return freed heap pages to the kernel (a few milliseconds; call after big, brief buffers)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
