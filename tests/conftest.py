"""What the tool's tests (tests/tool/) and the tree's tests (tests/albert/) share: the project's
paths, the real pinned upstream and the tool's cache for it, the `slow` mark and the file order."""
import os
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# The offline bundle of upstream beside this checkout: the tests' upstream unless ALBERT_UPSTREAM
# names another (the Makefile's default too).
SHARED_BUNDLE = PROJECT.parent / "shared" / "upstream" / "google-research-albert.bundle"
# The tool's package (albert_patches) and tools/albert_data.py, which makes the small data sets
# that the demo and the tests train on.
sys.path.insert(0, str(PROJECT / "tools"))


# The fixtures that build something real: a test using one is slow (see `make test-fast`).
SLOW_FIXTURES = {"albert_tree", "gaudi_env", "tool_cache", "upstream_cache", "upstream", "template",
                 "project"}


# The files whose tests take longest, longest first. They are collected first, so that with
# `pytest -n 2 --dist loadfile` (as `make test` and `make test-long` run) the longest files start
# first, on both workers, instead of one running alone at the end.
LONGEST_FIRST = ("test_learning.py", "test_run_glue.py", "test_gradient_accumulation.py",
                 "test_horovod_pretraining.py", "test_horovod_fine_tuning.py",
                 "test_pretraining_shards.py", "test_export_scripts.py",
                 "test_convert_huggingface.py", "test_pretraining_and_fine_tuning.py",
                 "test_convert_huggingface_inputs.py", "test_squad_v2_and_race.py")


def pytest_collection_modifyitems(items):
  for item in items:
    if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
      item.add_marker(pytest.mark.slow)
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def upstream_source():
  """Where tests take upstream from: ALBERT_UPSTREAM, else the bundle beside the project."""
  source = os.environ.get("ALBERT_UPSTREAM") or str(SHARED_BUNDLE)
  if "://" not in source and not Path(source).exists():
    pytest.skip(f"no upstream source at {source}; set ALBERT_UPSTREAM")
  return source


@pytest.fixture(scope="session")
def upstream_cache(tmp_path_factory):
  """The tool's cache for every run on the real upstream in the session, so that upstream is
  converted once: ALBERT_PATCHES_CACHE where it is set (`make test` shares it with its `check`),
  else a fresh directory."""
  explicit = os.environ.get("ALBERT_PATCHES_CACHE")
  return Path(explicit).resolve() if explicit else tmp_path_factory.mktemp("upstream-cache")
