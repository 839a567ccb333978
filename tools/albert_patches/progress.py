"""One line per stage, with its time, on stdout."""
import sys
import time
from contextlib import contextmanager


class Progress:

  def __init__(self, stream=None, notices=None):
    self.stream = stream or sys.stdout  # looked up now, so a caller's redirection is seen
    self.notices = notices or stream  # where `notice` goes, even when the stages are quiet

  def say(self, text):
    print(text, file=self.stream, flush=True)

  def notice(self, text):
    """Says something the user must see now, such as that the run is waiting for a lock."""
    print(text, file=self.notices, flush=True)

  @contextmanager
  def stage(self, name):
    """Times the block; the block sets `.detail` on the yielded object for the line's end."""
    line = _StageLine()
    start = time.monotonic()
    yield line
    self.say(f"{name:<12}{time.monotonic() - start:6.1f}s  {line.detail}".rstrip())


class _StageLine:
  detail = ""
