"""PullSketch's tracker inside a Python registry process.

``Tracker.record`` counts one manifest request in memory, on the calling thread, in about a
microsecond; the library merges what it counted into Redis every merge interval on its own
threads, and ``pullsketch reconcile`` writes it to PostgreSQL exactly once. Nothing here waits on
Redis, raises for a tracking problem, or fails a request.

A tracker belongs to the process that opened it. In a pre-fork server open it after the fork, in
each worker (gunicorn: ``post_fork``); a tracker inherited through a fork answers
``Result.FORKED`` and records nothing.

The shared library is found beside this file (``pip install`` puts it there with the Swift
runtime libraries it needs) or at ``$PULLSKETCH_LIBRARY``.
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from pathlib import Path
from typing import Optional, Union

__all__ = ["PullSketchError", "Result", "Tracker"]


class Result(enum.IntEnum):
    """What ``Tracker.record`` and ``Tracker.close`` did (the codes of ``pullsketch.h``)."""

    OK = 0
    DISABLED = 1
    INVALID_HANDLE = -1
    FORKED = -2
    INVALID_REPOSITORY = -3
    INVALID_TAG = -4
    INVALID_DIGEST = -5
    INVALID_METHOD = -6
    NO_REFERENCE = -7
    INVALID_TIME = -8

    @property
    def description(self) -> str:
        return _library().pullsketch_describe(int(self)).decode()


class PullSketchError(Exception):
    """The configuration cannot be used (``Tracker`` raises it, with the reason)."""


_loaded: Optional[ctypes.CDLL] = None
_loading = threading.Lock()


def _library() -> ctypes.CDLL:
    global _loaded
    with _loading:
        if _loaded is None:
            given = os.environ.get("PULLSKETCH_LIBRARY")
            folder = Path(__file__).parent
            if not given and (folder / "runtime.txt").exists():
                # The Swift runtime the package carries, each finding the others beside it.
                for name in (folder / "runtime.txt").read_text().split():
                    ctypes.CDLL(str(folder / name), mode=ctypes.RTLD_GLOBAL)
            library = ctypes.CDLL(given or str(folder / "libpullsketch.so"))
            library.pullsketch_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
            library.pullsketch_open.restype = ctypes.c_void_p
            library.pullsketch_record.argtypes = [ctypes.c_void_p] + [ctypes.c_char_p] * 5 + [ctypes.c_int64]
            library.pullsketch_record.restype = ctypes.c_int
            library.pullsketch_close.argtypes = [ctypes.c_void_p]
            library.pullsketch_close.restype = ctypes.c_int
            library.pullsketch_describe.argtypes = [ctypes.c_int]
            library.pullsketch_describe.restype = ctypes.c_char_p
            _loaded = library
        return _loaded


def _text(value: Optional[str]) -> Optional[bytes]:
    return None if value is None else value.encode()


class Tracker:
    """An open tracker: ``configuration`` is the path of a Quay-style config.yaml or YAML text;
    environment variables override it, as for the ``pullsketch`` command."""

    def __init__(self, configuration: Union[str, "os.PathLike[str]"]) -> None:
        library = _library()
        error = ctypes.create_string_buffer(1024)
        handle = library.pullsketch_open(os.fsencode(configuration), error, len(error))
        if not handle:
            raise PullSketchError(error.value.decode(errors="replace"))
        self._handle: Optional[int] = handle
        self._record = library.pullsketch_record

    def record(
        self,
        repository: str,
        *,
        tag: Optional[str] = None,
        digest: Optional[str] = None,
        method: str = "GET",
        served_digest: Optional[str] = None,
        time_ms: int = 0,
    ) -> Result:
        """Counts one successful manifest request: by ``tag`` or by ``digest`` (a tag wins),
        ``method`` "GET" or "HEAD", the digest served when known, at ``time_ms`` (milliseconds
        since the epoch, UTC; 0: now). Returns ``Result.OK``, or a code saying what was wrong."""
        if self._handle is None:
            return Result.INVALID_HANDLE
        return Result(self._record(
            self._handle, repository.encode(), _text(tag), _text(digest), method.encode(), _text(served_digest), time_ms
        ))

    def close(self) -> Result:
        """Merges what is left (for at most the flusher's grace period) and frees the tracker.
        Call it once no other thread records with this tracker (at worker exit)."""
        if self._handle is None:
            return Result.INVALID_HANDLE
        code = Result(_library().pullsketch_close(self._handle))
        if code is not Result.FORKED:
            self._handle = None
        return code

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()
