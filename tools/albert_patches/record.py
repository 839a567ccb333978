"""What the tool records in a tree it built: the stages' commits and the inputs they came from.

The record lives inside .git (albert-patches.json), so it never shows as a change in the tree.
It carries a schema version: a record this tool cannot read is a clear error, not a TypeError.
"""
import dataclasses
import json
from pathlib import Path

from .errors import ToolError

RECORD = "albert-patches.json"


class UnreadableRecord(ToolError):
  """A record written by another version of the tool (or not a record at all)."""
SCHEMA = 1  # raise when a field changes meaning or a required field is added


@dataclasses.dataclass
class Record:
  inputs: str  # Project.inputs_digest when the tree was built or last regenerated
  upstream: str  # the pinned upstream commit
  converted: str  # the tf_upgrade_v2 commit
  overlay: str  # the overlay commit
  head: str  # the last series commit
  patches: list  # [[patch file name, commit]] in series order
  date: str  # the date the tool's commits carry
  schema: int = SCHEMA

  @classmethod
  def load(cls, tree):
    """The tree's record, or None if the tool did not build it."""
    path = Path(tree) / ".git" / RECORD
    if not path.is_file():
      return None
    try:
      data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
      data = None
    return cls.from_dict(data, path)

  @classmethod
  def from_dict(cls, data, where):
    """A Record from its JSON form; `where` names it in the error if it is not one we can read."""
    schema = data.get("schema", 1) if isinstance(data, dict) else None
    fields = {f.name for f in dataclasses.fields(cls)}
    if schema != SCHEMA or set(data) - fields or fields - {"schema"} - set(data):
      found = f"schema {schema}" if isinstance(schema, int) else "not a record"
      raise UnreadableRecord(f"{where} is a record this tool cannot read ({found}; it reads schema "
                      f"{SCHEMA}); rebuild the tree with `apply --force` (work not in patches/ "
                      "is lost: regenerate it first with the tool that built the tree)")
    return cls(**data)

  def to_dict(self):
    return dataclasses.asdict(self)

  def save(self, tree):
    path = Path(tree) / ".git" / RECORD
    path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")


def require_built(tree):
  record = Record.load(tree)
  if record is None:
    raise ToolError(f"{tree} was not built by tools/apply_patches.py (no .git/{RECORD}); "
                    "build one with `tools/apply_patches.py apply --out DIR`")
  return record
