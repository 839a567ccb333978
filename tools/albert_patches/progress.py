"""One line per stage, with its time, on stdout."""
import sys
import time
from contextlib import contextmanager


class Progress:

  def __init__(self, stream=sys.stdout):
    self.stream = stream

  def say(self, text):
    print(text, file=self.stream, flush=True)

  @contextmanager
  def stage(self, name):
    """Times the block; the block sets `.detail` on the yielded object for the line's end."""
    line = _StageLine()
    start = time.monotonic()
    yield line
    self.say(f"{name:<12}{time.monotonic() - start:6.1f}s  {line.detail}".rstrip())


class _StageLine:
  detail = ""
