"""The project's inputs: patches/series, the patch files (header + diff), and overlay/."""
import dataclasses
import hashlib
import re
from pathlib import Path

from .errors import ToolError, read_utf8

PROJECT = Path(__file__).resolve().parents[2]
HEADER_END = "---\n"
_FIELD = re.compile(r"^[A-Z][A-Za-z-]*:")
NAME_TRAILER = "Patch-Name"
_NAME_LINE = re.compile(rf"^{NAME_TRAILER}:(.*)\n?", re.MULTILINE)


@dataclasses.dataclass
class Project:
  root: Path

  @property
  def lock_path(self):
    return self.root / "upstream.lock"

  @property
  def patches_dir(self):
    return self.root / "patches"

  @property
  def series_path(self):
    return self.patches_dir / "series"

  @property
  def overlay_dir(self):
    return self.root / "overlay"

  def series(self):
    """The patch file names in order; raises when series and patches/ disagree."""
    if not self.series_path.is_file():
      raise ToolError(f"{self.series_path} is missing: it lists the patches in order, one per line")
    names = []
    text = read_utf8(self.series_path, "save it as UTF-8 (patch file names, one a line)")
    for number, line in enumerate(text.splitlines(), 1):
      name = line.split("#", 1)[0].strip()
      if not name:
        continue
      if name in names:
        raise ToolError(f"{self.series_path} line {number}: {name} is listed twice")
      if not (self.patches_dir / name).is_file():
        raise ToolError(f"{self.series_path} line {number}: {name} has no file in patches/; "
                        "restore the file or remove the line")
      names.append(name)
    unlisted = sorted(p.name for p in self.patches_dir.glob("*.patch") if p.name not in names)
    if unlisted:
      raise ToolError(f"patches/{unlisted[0]} is not in patches/series; add it there "
                      "(in order) or delete the file")
    return names

  def patch(self, name):
    path = self.patches_dir / name
    return PatchFile.parse(name, read_utf8(path, "save the patch as UTF-8 (a binary change "
                                           "belongs in overlay/, not in a patch)"))

  def overlay_files(self):
    """Relative paths (str, '/'-separated) of every file under overlay/."""
    if not self.overlay_dir.is_dir():
      return []
    return sorted(p.relative_to(self.overlay_dir).as_posix()
                  for p in self.overlay_dir.rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts and p.suffix != ".pyc")

  def inputs_digest(self, tensorflow_version, tool_files):
    """A hash of everything a built tree depends on: equal hashes mean an equal tree."""
    digest = hashlib.sha256()

    def add(label, data):
      digest.update(f"{label}\0{len(data)}\0".encode())
      digest.update(data)

    add("converter", tensorflow_version.encode())
    add("lock", self.lock_path.read_bytes())
    add("series", self.series_path.read_bytes())
    for name in self.series():
      add(f"patch/{name}", (self.patches_dir / name).read_bytes())
    for rel in self.overlay_files():
      path = self.overlay_dir / rel
      add(f"overlay/{rel}/{path.stat().st_mode & 0o111:o}", path.read_bytes())
    for path in tool_files:
      add(f"tool/{path.name}", path.read_bytes())
    return digest.hexdigest()


@dataclasses.dataclass
class PatchFile:
  """A patch: a DEP-3 style header (Subject first), a `---` line, then a git diff."""
  name: str
  subject: str
  fields: str  # the header lines after Subject, verbatim
  diff: str

  @classmethod
  def parse(cls, name, text):
    head, sep, diff = text.partition("\n" + HEADER_END)
    if not text.strip():
      raise ToolError(f"patches/{name} is empty; write its header and diff (or regenerate it "
                      "from the tree), or remove it and its line in patches/series")
    if not sep and "\r\n" + HEADER_END.replace("\n", "\r\n") in text:
      raise ToolError(f"patches/{name} has CRLF line endings; convert it to LF "
                      f"(`sed -i 's/\\r$//' patches/{name}`)")
    if not sep or not head.startswith("Subject: "):
      raise ToolError(f"patches/{name}: no header; a patch starts with a `Subject:` line, "
                      "header fields, then a line `---` before the diff")
    if not re.search(r"^diff --git ", diff, re.MULTILINE):
      raise ToolError(f"patches/{name} has no `diff --git` after its header; a patch is a "
                      "header, a line `---`, then a git diff (regenerate writes them)")
    subject, _, fields = head.partition("\n")
    return cls(name, subject[len("Subject: "):].strip(), fields + "\n" if fields else "", diff)

  def text(self):
    return f"Subject: {self.subject}\n{self.fields}{HEADER_END}{self.diff}"

  def commit_message(self):
    """The message of the patch's commit in the tree: the subject, the header fields, and a
    `Patch-Name:` trailer, so the commit keeps its file name if its subject is reworded."""
    return f"{self.subject}\n\n{self.fields}{NAME_TRAILER}: {self.name}\n"

  @staticmethod
  def name_from_message(body):
    """The patch file name a commit's `Patch-Name:` trailer gives, or None."""
    found = _NAME_LINE.findall(body)
    return found[-1].strip() if found else None

  @staticmethod
  def header_fields_from_message(body):
    """Header fields from a commit message body; free text becomes a Description field.
    A `Patch-Name:` trailer is the tree's, not the header's: it is left out."""
    lines = _NAME_LINE.sub("", body).strip("\n").splitlines()
    if not lines:
      return ""
    if _FIELD.match(lines[0]):
      return "\n".join(line.rstrip() for line in lines) + "\n"
    out = [f"Description: {lines[0].rstrip()}"]
    out += [f" {line.rstrip()}" if line.strip() else " ." for line in lines[1:]]
    return "\n".join(out) + "\n"

  def field(self, key):
    match = re.search(rf"^{re.escape(key)}:(.*(?:\n .*)*)", self.fields, re.MULTILINE)
    return match.group(1).strip() if match else None
