#!/usr/bin/env python3
"""Builds upstream ALBERT with this project's patch series applied; see README.md."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from albert_patches.cli import main  # noqa: E402

if __name__ == "__main__":
  sys.exit(main())
