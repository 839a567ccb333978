"""The one reader of a patch's git diff: its files, and each file's hunks with their lines."""
import dataclasses
import re

_HUNK_START = re.compile(r"@@ -(\d+)")


@dataclasses.dataclass
class Hunk:
  number: int  # 1, 2, ... within its file
  old_start: int  # the first line it changes in the old file
  header: str  # the `@@ -a,b +c,d @@ ...` line
  lines: list  # the lines after the header, each with its ' ', '-' or '+' prefix

  @property
  def added(self):
    return [line[1:] for line in self.lines if line.startswith("+")]

  @property
  def removed(self):
    return [line[1:] for line in self.lines if line.startswith("-")]


@dataclasses.dataclass
class FileDiff:
  path: str  # the new path (b/...)
  head: list  # the lines from `diff --git` up to the first hunk (modes, ---, +++)
  hunks: list

  @property
  def creates(self):
    return any(line.startswith("new file mode") for line in self.head)


def parse(diff):
  """[FileDiff] of a git diff, in order; text before the first `diff --git` is ignored."""
  files = []
  for line in diff.splitlines():
    if line.startswith("diff --git "):
      files.append(FileDiff(line.split(" b/", 1)[-1], [line], []))
    elif not files:
      continue
    elif line.startswith("@@ "):
      hunks = files[-1].hunks
      hunks.append(Hunk(len(hunks) + 1, int(_HUNK_START.match(line).group(1)), line, []))
    elif files[-1].hunks:
      files[-1].hunks[-1].lines.append(line)
    else:
      files[-1].head.append(line)
  return files


def changed_lines(diff):
  """(added, removed) line counts of a git diff."""
  files = parse(diff)
  return (sum(len(h.added) for f in files for h in f.hunks),
          sum(len(h.removed) for f in files for h in f.hunks))
