"""Rules every patch file obeys, so that the series stays small and reviewable."""
import re

from . import diff as diffs

# A header may be this many lines longer than its diff's changed lines: room for the DEP-3
# fields (Subject, Description, Origin, Forwarded) and a description of about eight lines, what
# a one-line change can need to say what and why. Past that, a header tells more than its patch
# changes: history of the series, or prose that belongs in the README.
HEADER_ALLOWANCE = 12


def lint_patch(patch, overlay_files):
  """Problems in one patch file, as short phrases."""
  problems = []
  if not patch.subject:
    problems.append("empty Subject")
  if not patch.field("Description"):
    problems.append("header has no Description")
  header_lines = 1 + patch.fields.count("\n")
  changed = sum(diffs.changed_lines(patch.diff))
  if header_lines > changed + HEADER_ALLOWANCE:
    problems.append(f"header of {header_lines} lines for {changed} changed lines (at most "
                    f"{HEADER_ALLOWANCE} more than the diff changes): say what and why, shorter")
  if "\r" in patch.diff:
    problems.append("CRLF line ending")
  if re.search(r"^(Binary files |GIT binary patch)", patch.diff, re.MULTILINE):
    problems.append("binary file")
  for file in diffs.parse(patch.diff):
    if file.path in overlay_files:
      problems.append(f"{file.path} is also an overlay file")
    if file.creates and file.path not in overlay_files:
      problems.append(f"creates {file.path}: a file upstream does not have belongs in overlay/")
    for hunk in file.hunks:
      if any(added != added.rstrip() for added in hunk.added):
        problems.append(f"{file.path} hunk #{hunk.number} adds trailing whitespace")
        break
    # In Python a line's indentation is syntax: moving lines into a block is a change.
    squash = _squash_keeping_indent if file.path.endswith(".py") else _squash
    for hunk in file.hunks:
      if hunk.removed != hunk.added and squash(hunk.removed) == squash(hunk.added):
        problems.append(f"{file.path} hunk #{hunk.number} changes only whitespace")
  return problems


def _squash(lines):
  return re.sub(r"\s+", "", "".join(lines))


def _squash_keeping_indent(lines):
  return [re.match(r"\s*", line).group(0) + re.sub(r"\s+", "", line) for line in lines]
