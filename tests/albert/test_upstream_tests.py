"""Upstream's own unit tests, run from the patched tree under TensorFlow 2.

Each test file is run as upstream runs it (`python TREE/xxx_test.py`, i.e.
tf.test.main()) in its own process, from a directory outside the tree.
"""
import re

import pytest

from .tree import run_script

# Upstream test file -> the number of test methods it defines (tf.test
# counts its own skipped `test_session` too, so "Ran" is one more).
UPSTREAM_TESTS = {
    "tokenization_test.py": 9,
    "optimization_test.py": 1,
    "modeling_test.py": 3,
    "run_pretraining_test.py": 1,
}


@pytest.mark.parametrize("test_file", sorted(UPSTREAM_TESTS))
def test_upstream_test_passes(albert_tree, test_file, tmp_path):
  proc = run_script(albert_tree, test_file, cwd=tmp_path)
  output = proc.stdout + proc.stderr
  ran = re.search(r"^Ran (\d+) tests? in", output, re.M)
  assert ran, output[-4000:]
  status = re.search(r"^(OK|FAILED)\b(.*)$", output, re.M)
  assert status and status.group(1) == "OK", output[-4000:]
  skipped = re.search(r"skipped=(\d+)", status.group(2))
  executed = int(ran.group(1)) - (int(skipped.group(1)) if skipped else 0)
  assert executed == UPSTREAM_TESTS[test_file], output[-4000:]
