"""tools/apply_patches.py on the real pinned upstream ALBERT, with a copy of the real series.

The project's inputs (tools/, upstream.lock, overlay/, patches/) are copied from this checkout at
test time, so the tests follow the series as it is; they do not depend on which patches exist.
"""
import ast
import shutil

import pytest

from ..conftest import upstream_source
from .tool_project import (CONVERT_SUBJECT, MAIN, OVERLAY_SUBJECT, ToolProject,
                           describe, git)

PINNED = "b772393d3dae115b493258ce8e37c17b2cc62100"
OLDER = "932b41f0319fbef7efd069d5ff545e3358574e19"


def copy_real_project(root, cache):
  root.mkdir(parents=True)
  shutil.copy2(MAIN / "upstream.lock", root / "upstream.lock")
  for name in ("overlay", "patches"):
    shutil.copytree(MAIN / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  return ToolProject(root, cache)


@pytest.fixture(scope="module")
def real(tmp_path_factory, upstream_cache):
  """The real project, applied once to the real upstream; tests here must not change it."""
  source = upstream_source()
  project = copy_real_project(tmp_path_factory.mktemp("real") / "project", upstream_cache)
  proc = project.run("apply", "--upstream", source, timeout=600)
  assert proc.returncode == 0, describe(proc)
  project.source = source
  project.apply_output = proc.stdout
  return project


def test_apply_stages_in_order(real):
  lock = real.read_lock()
  assert lock["upstream"]["commit"] == PINNED
  names = real.series()
  subjects = [(real.patches / name).read_text().split("\n", 1)[0].removeprefix("Subject: ")
              .strip() for name in names]
  n = len(names)
  assert real.git("rev-parse", f"HEAD~{n + 2}").strip() == PINNED
  assert real.subjects()[-(n + 2):] == [CONVERT_SUBJECT, OVERLAY_SUBJECT, *subjects]
  record = real.record()
  assert [name for name, _ in record["patches"]] == names
  lines = real.apply_output.splitlines()
  assert [line.split()[0] for line in lines[:-1] if not line.startswith("warning")] == [
      "fetch", "convert", "overlay", *["patch"] * n]
  assert lines[-1].startswith("done: ") and f"with {n} patches" in lines[-1]
  assert real.git("status", "--porcelain") == ""


def test_every_python_file_parses(real):
  files = sorted(p for p in real.tree.rglob("*.py") if ".git" not in p.parts)
  assert len(files) > 20
  for path in files:
    ast.parse(path.read_bytes(), filename=str(path))


def test_conversion_is_the_locked_one(real):
  converted = real.record()["converted"]
  assert real.git("log", "-1", "--format=%s", converted).strip() == CONVERT_SUBJECT
  assert real.git("rev-parse", f"{converted}^{{tree}}").strip() == (
      real.read_lock()["converter"]["converted_tree"])


def test_reapply_is_a_no_op(real):
  state, files = real.tree_state(), real.files()
  proc = real.ok("apply", "--upstream", real.source)
  assert "nothing to do" in proc.stdout
  assert real.tree_state() == state and real.files() == files


def test_check_passes(real):
  files = real.files()
  proc = real.run("check", "--upstream", real.source, timeout=600)
  assert proc.returncode == 0, describe(proc)
  lines = proc.stdout.splitlines()
  assert len(lines) == len(real.series()) + 1
  assert all(line.split() == ["applies", name] for line, name in zip(lines, real.series()))
  assert lines[-1].startswith(f"ok: {len(real.series())} patches apply exactly on {PINNED[:12]}")
  assert real.files() == files


def test_update_to_older_upstream_and_back(real, tmp_path):
  project = ToolProject(tmp_path / "project", real.cache)
  shutil.copytree(real.root, project.root, symlinks=True)
  start_files, start_state = project.files(), project.tree_state()

  there = project.run("update", "--to", OLDER, "--upstream", real.source, timeout=600)
  if there.returncode != 0:
    _assert_clear_conflict_then_abort(project, there, start_files, start_state)
    return
  assert project.read_lock()["upstream"]["commit"] == OLDER
  assert project.git("rev-list", "--count", f"{OLDER}..HEAD").strip() == str(
      len(project.series()) + 2)

  middle_files, middle_state = project.files(), project.tree_state()
  back = project.run("update", "--to", PINNED, "--upstream", real.source, timeout=600)
  if back.returncode != 0:
    _assert_clear_conflict_then_abort(project, back, middle_files, middle_state)
    return
  after = project.files()
  patch_files = sorted(rel for rel in start_files if rel.startswith("patches/"))
  assert sorted(rel for rel in after if rel.startswith("patches/")) == patch_files
  for rel in patch_files:
    assert after[rel] == start_files[rel], f"{rel} differs after the round trip"
  lock = project.read_lock()
  assert lock["upstream"]["commit"] == PINNED
  assert lock == real.read_lock()
  assert project.git("rev-parse", "HEAD^{tree}").strip() == git(
      real.tree, "rev-parse", "HEAD^{tree}").strip()


def _assert_clear_conflict_then_abort(project, proc, files_before, state_before):
  """A conflict must name a patch and a file; --abort then restores project and tree exactly."""
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, describe(proc)
  message = lines[0]
  assert message.startswith("error: patch ") and " conflicts with upstream " in message, message
  assert message.split()[2] in project.series(), message
  assert "(conflict at line" in message or "does not apply" in message, message
  assert project.files() == files_before
  project.ok("update", "--abort")
  assert project.files() == files_before
  assert project.tree_state() == state_before
