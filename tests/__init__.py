"""The project's tests: tests/tool/ for tools/apply_patches.py, tests/albert/ for the tree it
builds."""
