"""The tool's tests' fixtures: a tiny upstream, a project on it and the tool's cache
(tool_project.py)."""
import pytest

# tool_project's asserts report their values as the tests' own do; registered before its import.
pytest.register_assert_rewrite("tests.tool.tool_project")

from .tool_project import project, template, tool_cache, upstream  # noqa: E402, F401 (fixtures)
