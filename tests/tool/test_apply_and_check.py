"""tools/apply_patches.py apply and check, on a tiny upstream the tests make (real git,
tf_upgrade_v2)."""
import shutil
import subprocess

import pytest

from .tool_project import (BATCH_PATCH, BATCH_SUBJECT, CONVERT_SUBJECT, LR_PATCH,
                           LR_SUBJECT, OVERLAY_FILE, OVERLAY_SUBJECT, assert_refused,
                           commit_files, edit, error_line, git, hunk_header_of,
                           python_without_tensorflow, tool_env)


def assert_no_staging_left(project):
  assert sorted(p.name for p in project.tree.parent.iterdir()) == ["albert"]


# --- apply ------------------------------------------------------------------------------------

def test_apply_builds_the_staged_history(project, upstream):
  shutil.rmtree(project.tree)
  proc = project.ok("apply")
  assert project.subjects() == ["Initial tiny model", "Add the run script", CONVERT_SUBJECT,
                                OVERLAY_SUBJECT, LR_SUBJECT, BATCH_SUBJECT]
  assert project.git("rev-parse", "HEAD~4").strip() == upstream.base
  # the conversion really converted, and the patches and the overlay are there
  modeling = (project.tree / "modeling.py").read_text()
  assert "tf.io.gfile.GFile(path" in modeling and "tf.gfile.GFile" not in modeling
  assert "import tensorflow as tf\n" in modeling
  assert 'tf.compat.v1.logging.info("hidden size %d"' in modeling
  assert "return 5e-5" in modeling
  assert '"batch_size", 32,' in (project.tree / "run.py").read_text()
  assert (project.tree / OVERLAY_FILE).read_text() == (project.root / "overlay" /
                                                       OVERLAY_FILE).read_text()
  # the conversion commit changes only what tf_upgrade_v2 changed
  converted = project.git("diff", "--name-only", "HEAD~4", "HEAD~3").split()
  assert converted == ["modeling.py", "run.py"]
  # one progress line per stage, then a line naming the tree and how to run a script
  lines = proc.stdout.splitlines()
  assert [line.split()[0] for line in lines[:-1]] == ["fetch", "convert", "overlay", "patch",
                                                      "patch"], proc.stdout
  assert LR_PATCH in lines[3] and BATCH_PATCH in lines[4]
  assert lines[-1].startswith("done: ") and str(project.tree) in lines[-1]
  assert "with 2 patches" in lines[-1] and "`python build/albert/" in lines[-1]
  assert project.git("status", "--porcelain") == ""
  assert_no_staging_left(project)


def test_apply_is_reproducible(project, template):
  before = project.git("rev-parse", "HEAD").strip()
  shutil.rmtree(project.tree)
  project.ok("apply")
  assert project.git("rev-parse", "HEAD").strip() == before
  assert project.git("rev-parse", "HEAD").strip() == git(template.tree, "rev-parse", "HEAD").strip()


def test_reapply_without_changes_is_a_no_op(project):
  state = project.tree_state()
  mtimes = {p: p.stat().st_mtime_ns for p in project.tree.rglob("*") if ".git" not in p.parts}
  project_files = project.files()
  proc = project.ok("apply")
  assert "up to date" in proc.stdout and "nothing to do" in proc.stdout
  assert "fetch" not in proc.stdout and proc.stderr == ""
  assert project.tree_state() == state
  assert {p: p.stat().st_mtime_ns for p in project.tree.rglob("*")
          if ".git" not in p.parts} == mtimes
  assert project.files() == project_files


def test_patch_that_does_not_apply_leaves_previous_tree(project):
  patch = project.patches / LR_PATCH
  text = patch.read_text()
  assert "\n def decay():\n" in text
  patch.write_text(text.replace("\n def decay():\n", "\n def decay_rate():\n"))
  state = project.tree_state()
  files = project.files()
  message = project.fails("apply")
  assert LR_PATCH in message and "modeling.py" in message and "hunk #1" in message
  assert "does not apply" in message
  assert project.tree_state() == state
  assert project.files() == files
  assert_no_staging_left(project)


def test_patch_applying_at_an_offset_is_reported_and_flagged_by_check(project):
  patch = project.patches / LR_PATCH
  text = patch.read_text()
  header = hunk_header_of(text)
  start = int(header.split()[1][1:].split(",")[0])
  shifted = header.replace(f"-{start},", f"-{start - 3},").replace(f"+{start},", f"+{start - 3},")
  patch.write_text(text.replace(header, shifted))
  proc = project.ok("apply")
  patch_line = next(line for line in proc.stdout.splitlines() if LR_PATCH in line)
  assert "modeling.py hunk #1 offset 3" in patch_line, proc.stdout
  assert "return 5e-5" in (project.tree / "modeling.py").read_text()

  proc = project.run("check")
  message = error_line(proc)
  assert "1 of 2 patches need attention" in message
  lines = proc.stdout.splitlines()
  flagged = next(line for line in lines if LR_PATCH in line)
  assert flagged.startswith("applies") and "applies only with an offset" in flagged
  assert "modeling.py hunk #1 offset 3" in flagged
  clean = next(line for line in lines if BATCH_PATCH in line)
  assert clean.split() == ["applies", BATCH_PATCH]


@pytest.mark.parametrize("kind", ["edit", "untracked", "commit"])
def test_dirty_tree_is_refused_then_force_replaces(project, kind):
  head = project.git("rev-parse", "HEAD").strip()
  if kind == "edit":
    edit(project.tree / "run.py", "Runs the tiny model.", "Runs the tiny model, edited.")
    expect = "uncommitted run.py"
  elif kind == "untracked":
    (project.tree / "notes.txt").write_text("mine\n")
    expect = "uncommitted notes.txt"
  else:
    commit_files(project.tree, "My local change", {"run.py": "print('mine')\n"})
    expect = "My local change"
  # the inputs changed too, so only the work keeps apply from rebuilding
  edit(project.patches / "series", "# The patch series", "# The patch series (touched)")
  state = project.tree_state()
  message = project.fails("apply")
  assert expect in message and "regenerate" in message and "--force" in message
  assert project.tree_state() == state

  proc = project.ok("apply", "--force")
  assert "done:" in proc.stdout
  assert project.git("status", "--porcelain", "--untracked-files=all") == ""
  assert project.git("rev-parse", "HEAD").strip() == head
  assert "edited" not in (project.tree / "run.py").read_text()
  assert not (project.tree / "notes.txt").exists()
  assert_no_staging_left(project)


# --- errors: one `error:` line, nothing changed -------------------------------------------------

def _assert_refused(project, *args, expect=(), **kwargs):
  """Runs apply on the existing tree, expects an error naming `expect`, and that nothing changed."""
  files = project.files()  # tools/ too
  message = assert_refused(project, "apply", *args, expect=expect, **kwargs)
  assert project.files() == files
  assert_no_staging_left(project)
  return message


@pytest.mark.parametrize("source", ["url", "not-a-repo", "missing-path"])
def test_unreachable_source(project, tmp_path, source):
  if source == "url":
    where = "file:///nonexistent/albert.git"
  elif source == "not-a-repo":
    where = tmp_path / "not-a-repo"
    where.mkdir()
    (where / "README").write_text("not git\n")
  else:
    where = tmp_path / "missing"
  empty_cache = tmp_path / "empty-cache"  # so the pinned commit must come from the source
  edit(project.patches / "series", "# The patch series", "# The patch series (touched)")
  _assert_refused(project, "--upstream", str(where), cache=empty_cache,
                  expect=[str(where), "--upstream"])


def test_unreachable_source_from_environment(project, tmp_path):
  edit(project.patches / "series", "# The patch series", "# The patch series (touched)")
  _assert_refused(project, cache=tmp_path / "empty-cache",
                  env={"ALBERT_UPSTREAM": "file:///nonexistent/albert.git"},
                  expect=["file:///nonexistent/albert.git", "--upstream"])


def test_missing_lock(project):
  project.lock.unlink()
  _assert_refused(project, expect=["upstream.lock is missing"])


@pytest.mark.parametrize("number,bad,named", [
    (8, 'commit = "b772393"', 8),  # not a full hash
    (9, 'tree = "1e7b361d', 9),  # not TOML
    (14, "", 11),  # a key missing: its table's line
])
def test_malformed_lock_names_the_line(project, number, bad, named):
  lines = project.lock.read_text().splitlines(keepends=True)
  assert lines[number - 1].split()[0] in ("commit", "tree", "tensorflow")
  lines[number - 1] = bad + "\n"
  project.lock.write_text("".join(lines))
  message = _assert_refused(project, expect=["upstream.lock"])
  assert f"line {named}" in message, message


def test_lock_tree_mismatch(project):
  project.write_lock(tree="1" * 40)
  _assert_refused(project, expect=["1" * 40, "tree"])


def test_tf_upgrade_v2_missing(project):
  python = python_without_tensorflow()
  if python is None:
    pytest.skip("no Python 3.11+ without TensorFlow outside the venv")
  # The digest includes the converter version, so this Python would rebuild the tree.
  message = _assert_refused(project, python=python, expect=["tf_upgrade_v2", python])
  assert "pip install tensorflow==" in message and "make setup" in message


def test_gitpython_missing(project):
  python = python_without_tensorflow()
  if python is None or subprocess.run([python, "-c", "import git"], capture_output=True,
                                      env=tool_env(project.cache)).returncode == 0:
    pytest.skip("no Python 3.11+ without GitPython outside the venv")
  message = assert_refused(project, "status", python=python, expect=["GitPython", python])
  assert "make setup" in message


def test_errors_before_a_first_build_create_nothing(project):
  out = project.root / "build" / "fresh"
  project.lock.unlink()
  message = project.fails("apply", "--out", str(out))
  assert "upstream.lock" in message
  assert not out.exists()
  assert_no_staging_left(project)


# --- check ------------------------------------------------------------------------------------

def test_check_reports_each_patch_and_changes_nothing(project):
  out = project.root / "build" / "checked"
  files, state = project.files(), project.tree_state()
  # check builds in a temporary place of its own: it takes no --out
  assert "--out" in project.fails("check", "--out", str(out))
  proc = project.ok("check")
  lines = proc.stdout.splitlines()
  assert lines[0].split() == ["applies", LR_PATCH]
  assert lines[1].split() == ["applies", BATCH_PATCH]
  assert lines[-1].startswith("ok: 2 patches apply exactly")
  assert not out.exists()
  assert project.files() == files and project.tree_state() == state
  assert_no_staging_left(project)


def test_check_reports_a_failing_patch(project):
  edit(project.patches / LR_PATCH, "\n def decay():\n", "\n def decay_rate():\n")
  files, state = project.files(), project.tree_state()
  proc = project.run("check")
  message = error_line(proc)
  assert LR_PATCH in message and "modeling.py" in message
  lines = proc.stdout.splitlines()
  assert lines[0].split() == ["FAILS", LR_PATCH]
  assert lines[1].split() == ["not", "tried", BATCH_PATCH]
  assert project.files() == files and project.tree_state() == state


def _trailing_whitespace(project):
  edit(project.patches / BATCH_PATCH, '"batch_size", 32, "Batch size.")\n',
       '"batch_size", 32, "Batch size.")  \n')
  return BATCH_PATCH, "run.py hunk #1 adds trailing whitespace"


def _crlf(project):
  path = project.patches / BATCH_PATCH
  data = path.read_bytes()
  added = b'+flags.DEFINE_integer("batch_size", 32, "Batch size.")\n'
  assert added in data
  path.write_bytes(data.replace(added, added[:-1] + b"\r\n"))
  return BATCH_PATCH, "CRLF line ending"


def _no_description(project):
  path = project.patches / BATCH_PATCH
  text = path.read_text()
  assert "\nDescription: HPUs have memory to spare.\n" in text
  path.write_text(text.replace("\nDescription: HPUs have memory to spare.\n", "\n"))
  return BATCH_PATCH, "header has no Description"


def _creates_a_file(project):
  with open(project.patches / BATCH_PATCH, "a") as f:
    f.write("diff --git a/extra.py b/extra.py\nnew file mode 100644\n--- /dev/null\n"
            "+++ b/extra.py\n@@ -0,0 +1 @@\n+x = 1\n")
  return BATCH_PATCH, "creates extra.py: a file upstream does not have belongs in overlay/"


def _whitespace_only(project):
  # made with the tool's own workflow: a commit in the tree, then regenerate
  edit(project.tree / "modeling.py", "self.num_layers = num_layers",
       "self.num_layers =  num_layers")
  git(project.tree, "commit", "-q", "-am", "Align an assignment", "-m", "Looks nicer.")
  project.ok("regenerate")
  name = project.series()[-1]
  assert name == "0003-align-an-assignment.patch"
  return name, "modeling.py hunk #1 changes only whitespace"


@pytest.mark.parametrize("make_problem", [_trailing_whitespace, _crlf, _no_description,
                                          _creates_a_file, _whitespace_only],
                         ids=lambda f: f.__name__.strip("_"))
def test_check_lint(project, make_problem):
  name, problem = make_problem(project)
  files = project.files()
  proc = project.run("check")
  message = error_line(proc)
  assert "need attention" in message
  lines = proc.stdout.splitlines()
  flagged = next(line for line in lines if name in line)
  assert problem in flagged, proc.stdout
  others = [line for line in lines if LR_PATCH in line]
  assert others and "--" not in others[0], proc.stdout
  assert project.files() == files
