"""Tests of tools/apply_patches.py, mostly on a tiny upstream the tests make (tool_project.py)."""
