"""Exclusive locks (fcntl.flock) on the cache and on a tree's directory: concurrent runs take turns.

A lock is a file or directory held open with flock: the kernel drops it when its holder exits,
however it exits, so a killed run never leaves a stale lock behind. A run that finds the lock
taken says so on its progress output and waits.
"""
import fcntl
import os
from contextlib import contextmanager

from . import fetch
from .errors import ToolError


@contextmanager
def exclusive(path, say, what, directory=False):
  """Holds an exclusive lock on the file `path` (or the directory, with `directory`), creating
  it if missing; `what` names the holder we would wait for."""
  try:
    (path if directory else path.parent).mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | (0 if directory else os.O_CREAT), 0o666)
  except OSError as e:
    raise ToolError(f"cannot lock {path} ({e.strerror}); make it writable, or choose another "
                    "place for it") from None
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
  """The lock on the directory that holds the tree (so no file is left beside it): one apply
  at a time builds, replaces or recovers a tree there."""
  return exclusive(out.parent, say, f"apply to finish in {out.parent}", directory=True)
