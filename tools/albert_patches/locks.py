"""Exclusive locks (fcntl.flock) for the cache and for a tree, so that concurrent runs take turns.

A lock is a file held open with flock: the kernel drops it when its holder exits, however it
exits, so a killed run never leaves a stale lock behind. A run that finds the lock taken says
so on its progress output and waits.
"""
import fcntl
import os
from contextlib import contextmanager

from . import fetch


@contextmanager
def exclusive(path, say, what):
  """Holds an exclusive lock on the file `path`; `what` names the holder we would wait for."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      say(f"waiting for another {what} ...")
      fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)  # closing the only descriptor releases the lock


def cache(say):
  """The cache lock: held while the mirror is created or fetched into, and a conversion made."""
  return exclusive(fetch.cache_dir() / "lock", say,
                   f"apply to finish with the cache {fetch.cache_dir()}")


def tree(out, say):
  """The lock on one tree (a file beside it): one apply at a time builds or replaces it."""
  return exclusive(out.parent / f".{out.name}.lock", say, f"apply to finish with {out}")
