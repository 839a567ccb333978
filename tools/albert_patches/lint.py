"""Rules every patch file obeys, so that the series stays small and reviewable."""
import re


def lint_patch(patch, overlay_files):
  """Problems in one patch file, as short phrases."""
  problems = []
  if not patch.subject:
    problems.append("empty Subject")
  if not patch.field("Description"):
    problems.append("header has no Description")
  if "\r" in patch.diff:
    problems.append("CRLF line ending")
  if re.search(r"^(Binary files |GIT binary patch)", patch.diff, re.MULTILINE):
    problems.append("binary file")
  for path, body in _file_sections(patch.diff):
    if path in overlay_files:
      problems.append(f"{path} is also an overlay file")
    if "\nnew file mode" in body.split("\n@@", 1)[0] and path not in overlay_files:
      problems.append(f"creates {path}: a file upstream does not have belongs in overlay/")
    for number, added in _added_lines(body):
      if added != added.rstrip():
        problems.append(f"{path} hunk #{number} adds trailing whitespace")
        break
    for number, removed, added in _hunk_changes(body):
      if removed != added and _squash(removed) == _squash(added):
        problems.append(f"{path} hunk #{number} changes only whitespace")
  return problems


def _file_sections(diff):
  sections = re.split(r"^(?=diff --git )", diff, flags=re.MULTILINE)
  for section in sections:
    if section.startswith("diff --git "):
      yield section.split("\n", 1)[0].split(" b/", 1)[-1], section


def _hunks(body):
  return re.split(r"^(?=@@ )", body, flags=re.MULTILINE)[1:]


def _added_lines(body):
  for number, hunk in enumerate(_hunks(body), 1):
    for line in hunk.splitlines()[1:]:
      if line.startswith("+"):
        yield number, line[1:]


def _hunk_changes(body):
  for number, hunk in enumerate(_hunks(body), 1):
    lines = hunk.splitlines()[1:]
    removed = [line[1:] for line in lines if line.startswith("-")]
    added = [line[1:] for line in lines if line.startswith("+")]
    yield number, "\n".join(removed), "\n".join(added)


def _squash(text):
  return re.sub(r"\s+", "", text)

