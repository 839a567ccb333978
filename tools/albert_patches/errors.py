class ToolError(Exception):
  """A failure the user can act on; the message is printed as one `error:` line."""
