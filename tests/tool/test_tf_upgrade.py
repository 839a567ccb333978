"""tools/albert_patches/tf_upgrade.py converts as `tf_upgrade_v2 --intree --inplace` does.

The tool converts upstream's files in parallel, with TensorFlow's converter reached without
importing TensorFlow. On the pinned upstream commit both must leave the same bytes and modes in
every file, and write the same report (but for the tree's name in it).
"""
import subprocess
import sys

from albert_patches import git
from albert_patches.convert import UPGRADE_SCRIPT
from ..conftest import upstream_source

PINNED = "b772393d3dae115b493258ce8e37c17b2cc62100"


def checkout(source, dest):
  git.run(["clone", "--quiet", "--no-checkout", source, str(dest)])
  git.run(["checkout", "--quiet", PINNED], cwd=dest)
  return dest


def files(tree):
  """{relative path: (mode, bytes)} of every file outside .git."""
  return {str(p.relative_to(tree)): (p.stat().st_mode, p.read_bytes())
          for p in sorted(tree.rglob("*")) if p.is_file() and ".git" not in p.parts}


def test_same_tree_and_report_as_tf_upgrade_v2(tmp_path):
  source = upstream_source()
  ours, theirs = checkout(source, tmp_path / "ours"), checkout(source, tmp_path / "theirs")
  subprocess.run([sys.executable, "-m", "tensorflow.tools.compatibility.tf_upgrade_v2_main",
                  "--intree", str(theirs), "--inplace", "--reportfile",
                  str(tmp_path / "theirs.txt")], check=True, capture_output=True)
  subprocess.run([sys.executable, str(UPGRADE_SCRIPT), str(ours), str(tmp_path / "ours.txt")],
                 check=True, capture_output=True)
  converted, expected = files(ours), files(theirs)
  assert converted == expected
  assert converted != files(checkout(source, tmp_path / "unconverted"))
  report = (tmp_path / "ours.txt").read_text()
  assert "Converted 21 files" in report
  assert report.replace(str(ours), "TREE") == (
      (tmp_path / "theirs.txt").read_text().replace(str(theirs), "TREE"))
