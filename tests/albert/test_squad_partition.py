"""The SQuAD (and GLUE) example partition: horovod_helpers.example_slice.

run_squad_v1.py and run_classifier.py give each Horovod rank
train_examples[start:end] from this one function; checked here for 1, 2 and
3 ranks and example counts with and without remainder.
"""
import json
import os
import subprocess
import sys

import pytest

SIZES = (1, 2, 3)
COUNTS = (0, 1, 2, 5, 6, 7, 12, 100, 101)

SLICES = """
import json, sys
from albert.horovod_helpers import example_slice
out = {}
for size in %r:
  for count in %r:
    out["%%d/%%d" %% (count, size)] = [example_slice(count, size, rank)
                                     for rank in range(size)]
errors = []
for args in [(5, 2, 2), (5, 2, -1), (5, 0, 0)]:
  try:
    example_slice(*args)
  except ValueError as e:
    errors.append(str(e))
print(json.dumps({"slices": out, "errors": errors}))
""" % (SIZES, COUNTS)


@pytest.fixture(scope="module")
def result(albert_tree):
  proc = subprocess.run([sys.executable, "-c", SLICES],
                        env=dict(os.environ, PYTHONPATH=str(albert_tree)),
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout)


def habana_slice(count, size, rank):
  """Habana's run_squad_v1.py arithmetic, written out as it lists it."""
  per_rank = count // size
  remainder = count % size
  if rank < remainder:
    start = rank * (per_rank + 1)
    return start, start + per_rank + 1
  start = rank * per_rank + remainder
  return start, start + per_rank


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("count", COUNTS)
def test_every_example_in_exactly_one_slice(result, count, size):
  slices = [tuple(s) for s in result["slices"]["%d/%d" % (count, size)]]
  covered = [i for start, end in slices for i in range(start, end)]
  assert covered == list(range(count))          # once each, in order
  assert slices[0][0] == 0 and slices[-1][1] == count
  for (_, end), (start, _) in zip(slices, slices[1:]):
    assert end == start                         # contiguous
  lengths = [end - start for start, end in slices]
  assert max(lengths) - min(lengths) <= 1
  assert lengths == sorted(lengths, reverse=True)  # the first ranks get more
  assert slices == [habana_slice(count, size, r) for r in range(size)]


def test_remainder_cases_are_covered(result):
  with_remainder = [k for k in result["slices"]
                    if int(k.split("/")[0]) % int(k.split("/")[1])]
  assert "7/2" in with_remainder and "7/3" in with_remainder
  assert result["slices"]["7/3"] == [[0, 3], [3, 5], [5, 7]]


def test_bad_rank_or_size_is_rejected(result):
  assert result["errors"] == ["rank 2 out of range for 2 workers",
                              "rank -1 out of range for 2 workers",
                              "rank 0 out of range for 0 workers"]
