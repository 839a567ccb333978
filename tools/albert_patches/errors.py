"""The one error the user sees, and reading the project's text files without a traceback."""


class ToolError(Exception):
  """A failure the user can act on; the message is printed as one `error:` line."""


class PatchDoesNotApply(ToolError):
  """A patch of the series that git apply refused; `.patch` is its file name."""

  def __init__(self, patch, message):
    super().__init__(message)
    self.patch = patch


def read_utf8(path, fix, data=None):
  """The text of a project file (`data`, if already read, else the file), exactly as written.

  Not read_text: that would turn CRLF into LF and hide it from the lint. Bytes that are not UTF-8
  are named with their offset, with `fix` saying what to do.
  """
  data = path.read_bytes() if data is None else data
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise ToolError(f"{path} line {line}: byte {data[e.start]:#04x} is not UTF-8; {fix}") from None
