"""upstream.lock: which upstream commit the series applies to, and how to verify what was
fetched."""
import dataclasses
import re
import tomllib
from pathlib import Path

from .errors import ToolError, read_utf8

_SHA = re.compile(r"^[0-9a-f]{40}$")

_TEMPLATE = """\
# The upstream ALBERT that patches/series applies to.
# Written by `tools/apply_patches.py update --to COMMIT`; edit by hand only with care.

[upstream]
# Default source; --upstream or ALBERT_UPSTREAM override it (a URL, a clone or a bundle).
url = "{url}"
# The pinned commit, and its tree: git checks both hashes against the fetched objects.
commit = "{commit}"
tree = "{tree}"

[converter]
# tf_upgrade_v2 from this TensorFlow release made the conversion the series is based on;
# converted_tree is its output, so a different converter's output is detected.
tensorflow = "{tensorflow}"
converted_tree = "{converted_tree}"
"""


@dataclasses.dataclass(frozen=True)
class Lock:
  url: str
  commit: str
  tree: str
  tensorflow: str
  converted_tree: str

  @classmethod
  def read(cls, path):
    path = Path(path)
    if not path.is_file():
      raise ToolError(f"{path} is missing: restore it with `git checkout -- {path.name}`")
    text = read_utf8(path, f"restore it with `git checkout -- {path.name}`")
    try:
      data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
      raise ToolError(f"{path} is not valid TOML ({e}); fix that line") from None
    values = {}
    for table, key in [("upstream", "url"), ("upstream", "commit"), ("upstream", "tree"),
                       ("converter", "tensorflow"), ("converter", "converted_tree")]:
      section = data.get(table)
      if not isinstance(section, dict):
        raise ToolError(f"{path} line {_line_of(text, table, key)}: [{table}] must be a table "
                        f"holding {key} (see the comments in a lock from git)")
      value = section.get(key)
      if not isinstance(value, str) or not value:
        raise ToolError(f"{path} line {_line_of(text, table, key)}: "
                        f"[{table}] {key} must be a non-empty string")
      if key in ("commit", "tree", "converted_tree") and not _SHA.match(value):
        raise ToolError(f"{path} line {_line_of(text, table, key)}: [{table}] {key} = "
                        f"{value!r} is not a full 40-hex git hash")
      values[key] = value
    return cls(**values)

  def text(self):
    """The lock file's text: the fields in a fixed layout, with the comments that explain them."""
    return _TEMPLATE.format(**dataclasses.asdict(self))

  def write(self, path):
    Path(path).write_text(self.text(), encoding="utf-8")


def _line_of(text, table, key):
  """The line a key is on (or its table, or the end of the file) for error messages."""
  in_table = False
  table_line = None
  for number, line in enumerate(text.splitlines(), 1):
    stripped = line.strip()
    if stripped.startswith("["):
      in_table = stripped == f"[{table}]"
      if in_table:
        table_line = number
    elif in_table and re.match(rf"{re.escape(key)}\s*=", stripped):
      return number
    elif re.match(rf"{re.escape(table)}\s*=", stripped) and table_line is None:
      table_line = number  # the table's name given a plain value
  return table_line or len(text.splitlines()) + 1
