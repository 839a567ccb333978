"""Stage 4, patch: each patch of the series applied with exact context and committed on its own."""
import re

from . import diff as diffs
from . import git
from .errors import PatchDoesNotApply

_FAILED_AT = re.compile(r"^error: patch failed: (.+):(\d+)$", re.MULTILINE)
_NOT_APPLY = re.compile(r"^error: (.+?): (?:patch does not apply|does not exist in index|"
                        r"No such file or directory|already exists in working directory)$",
                        re.MULTILINE)
_OFFSET = re.compile(r"^Hunk #(\d+) succeeded at (\d+) \(offset (-?\d+) lines?\)\.$", re.MULTILINE)


def apply_patch(tree, patch, date):
  """Applies and commits one patch; returns (sha, offset notes) or raises naming file and hunk."""
  try:
    report = git.apply(tree, patch.diff)
  except git.GitError as e:
    raise PatchDoesNotApply(
        patch.name, f"patch {patch.name} does not apply: {_where(e.stderr, patch.diff)}; "
        "refresh it against the converted upstream (see README, Changing a patch)") from None
  offsets = []
  current = None
  for line in report.splitlines():
    if line.startswith("Checking patch "):
      current = line[len("Checking patch "):].rstrip(".")
    match = _OFFSET.match(line)
    if match:
      offsets.append(f"{current} hunk #{match.group(1)} offset {match.group(3)}")
  return git.commit_all(tree, patch.commit_message(), date), offsets


def _where(stderr, diff):
  """Names the file and hunk git apply stopped at, from its messages and the patch itself."""
  failed = _FAILED_AT.search(stderr)
  if failed:
    path, line = failed.group(1), int(failed.group(2))
    for file in diffs.parse(diff):
      for hunk in file.hunks if file.path == path else []:
        if hunk.old_start == line:
          return (f"{path}, hunk #{hunk.number} ({hunk.header.split(' @@')[0]} @@), "
                  "context not found")
    return f"{path}, the hunk at line {line}, context not found"
  missing = _NOT_APPLY.search(stderr)
  if missing:
    return f"{missing.group(0)[len('error: '):]}"
  lines = stderr.strip().splitlines()
  return lines[-1] if lines else "git apply failed"
