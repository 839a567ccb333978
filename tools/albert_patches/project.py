"""The project's inputs: patches/series, the patch files (header + diff), and overlay/."""
import dataclasses
import hashlib
import os
import re
from pathlib import Path

from .errors import ToolError, read_utf8

PROJECT = Path(__file__).resolve().parents[2]
TOOL_ROOT = Path(__file__).resolve().parent
HEADER_END = "---\n"
_FIELD = re.compile(r"^[A-Z][A-Za-z-]*:")
# The trailers a patch's commit in the tree carries, so that the commit keeps its file and
# folder through a reworded subject.
NAME_TRAILER = "Patch-Name"
TOPIC_TRAILER = "Patch-Topic"
_TRAILER_LINE = re.compile(rf"^({NAME_TRAILER}|{TOPIC_TRAILER}):(.*)\n?", re.MULTILINE)


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
    """The series entries in order (`topic/NNNN-name.patch`, or `NNNN-name.patch` at the top);
    raises when an entry leaves patches/, or when series and patches/ disagree."""
    if self.patches_dir.is_symlink():
      raise ToolError(f"{self.patches_dir} is a symlink; patches/ must be a folder of the project")
    if not self.series_path.is_file() or self.series_path.is_symlink():
      raise ToolError(f"{self.series_path} is missing: it lists the patches in order, one per line")
    names = []
    text = read_utf8(self.series_path, "save it as UTF-8 (patch file names, one a line)")
    for number, line in enumerate(text.splitlines(), 1):
      name = line.split("#", 1)[0].strip()
      if not name:
        continue
      where = f"{self.series_path} line {number}: {name}"
      _require_entry_inside(self.patches_dir, name, where)
      if name in names:
        raise ToolError(f"{where} is listed twice")
      if not (self.patches_dir / name).is_file():
        raise ToolError(f"{where} has no file in patches/; restore the file or remove the line")
      names.append(name)
    unlisted = sorted(set(_patch_files(self.patches_dir)) - set(names))
    if unlisted:
      raise ToolError(f"patches/{unlisted[0]} is not in patches/series; add it there "
                      "(in order) or delete the file")
    return names

  def patch_paths(self):
    """Every .patch file under patches/, as series entries (for removing stale ones)."""
    return _patch_files(self.patches_dir)

  def patch(self, name):
    path = self.patches_dir / name
    return PatchFile.parse(name, read_utf8(path, "save the patch as UTF-8 (a binary change "
                                           "belongs in overlay/, not in a patch)"))

  def overlay_files(self):
    """Relative paths (str, '/'-separated) of every file under overlay/; raises on anything
    but regular files and folders (a symlink would copy what it points at into the tree)."""
    if self.overlay_dir.is_symlink():
      raise ToolError(f"{self.overlay_dir} is a symlink; overlay/ must be a folder of the project")
    if not self.overlay_dir.is_dir():
      return []
    files = []
    for folder, dirs, names in os.walk(self.overlay_dir):
      dirs[:] = sorted(d for d in dirs if d != "__pycache__")
      for name in dirs + names:
        path = Path(folder) / name
        rel = path.relative_to(self.overlay_dir).as_posix()
        if path.is_symlink():
          raise ToolError(f"overlay/{rel} is a symlink; the overlay holds regular files only: "
                          "put the file itself there")
        if name in names and not path.is_file():
          raise ToolError(f"overlay/{rel} is not a regular file (a device, FIFO or socket); "
                          "remove it from overlay/")
        if name in names and path.suffix != ".pyc":
          files.append(rel)
    return sorted(files)

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
      add(f"tool/{path.relative_to(TOOL_ROOT).as_posix()}", path.read_bytes())
    return digest.hexdigest()


# A series entry: a patch file at the top of patches/ or in one folder of it (its topic), each
# part a plain name, so that no entry can name a file outside patches/.
_ENTRY = re.compile(r"^(?:[a-z0-9][a-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._+-]*\.patch$")
TOPIC = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _require_entry_inside(patches_dir, name, where):
  if not _ENTRY.match(name):
    raise ToolError(f"{where} is not a patch file inside patches/; an entry is a relative path "
                    "such as horovod/0012-name.patch (one lower-case folder at most, no `..`, "
                    "not absolute)")
  path = patches_dir
  for part in name.split("/"):
    path = path / part
    if path.is_symlink():
      raise ToolError(f"{where}: patches/{path.relative_to(patches_dir).as_posix()} is a "
                      "symlink; patches/ holds the patch files and folders themselves")


def _patch_files(patches_dir):
  """The .patch files under patches/ (symlinks not followed), as series entries."""
  found = []
  for folder, dirs, names in os.walk(patches_dir):
    dirs.sort()
    found += [(Path(folder) / name).relative_to(patches_dir).as_posix()
              for name in names if name.endswith(".patch")]
  return sorted(found)


@dataclasses.dataclass
class PatchFile:
  """A patch: a DEP-3 style header (Subject first), a `---` line, then a git diff."""
  name: str  # the series entry: `topic/NNNN-name.patch`, or `NNNN-name.patch`
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

  @property
  def file_name(self):
    return self.name.rsplit("/", 1)[-1]

  @property
  def topic(self):
    """The folder of patches/ the patch is in (its concern), or None at the top."""
    return self.name.rsplit("/", 1)[0] if "/" in self.name else None

  def commit_message(self):
    """The message of the patch's commit in the tree: the subject, the header fields, and the
    `Patch-Name:` (and `Patch-Topic:`) trailers."""
    topic = f"{TOPIC_TRAILER}: {self.topic}\n" if self.topic else ""
    return f"{self.subject}\n\n{self.fields}{NAME_TRAILER}: {self.file_name}\n{topic}"

  @staticmethod
  def trailer(body, key):
    """The value of a commit message's last `KEY:` trailer (Patch-Name, Patch-Topic), or None."""
    found = [value.strip() for name, value in _TRAILER_LINE.findall(body) if name == key]
    return found[-1] if found else None

  @staticmethod
  def name_from_message(body):
    """The patch file name a commit's `Patch-Name:` trailer gives, or None."""
    return PatchFile.trailer(body, NAME_TRAILER)

  @staticmethod
  def header_fields_from_message(body):
    """Header fields from a commit message body; free text becomes a Description field.
    The trailers are the tree's, not the header's: they are left out."""
    lines = _TRAILER_LINE.sub("", body).strip("\n").splitlines()
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
