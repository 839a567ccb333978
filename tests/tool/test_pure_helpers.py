"""The tool's pure helpers, in process: patch files, headers, slugs, the lint, the lock's line
numbers, the record's schema, and the command line driven through main(argv, root=...).

No git, no TensorFlow: these run in well under a second, so they are the first tests to run
while changing the tool (`make test-fast`)."""
import os

import pytest

from albert_patches import cli, export, lint, patching
from albert_patches import diff as diffs
from albert_patches.errors import ToolError
from albert_patches.upstream_lock import Lock
from albert_patches.record import SCHEMA, Record
from albert_patches.project import PatchFile, Project

SHA = "0123456789abcdef0123456789abcdef01234567"
DIFF = """\
diff --git a/modeling.py b/modeling.py
--- a/modeling.py
+++ b/modeling.py
@@ -10,3 +10,3 @@ def learning_rate():
 
 def learning_rate():
-  return 1e-4
+  return 5e-5
@@ -20,2 +20,2 @@ def decay():
-  return 0.01
+  return 0.02
"""  # noqa: W293 (the diff's blank context line is a single space)
TEXT = f"Subject: Use a smaller learning rate\nDescription: It diverges.\n---\n{DIFF}"


# --- patch files ------------------------------------------------------------------------------

def test_a_patch_file_parses_and_prints_back_byte_for_byte():
  patch = PatchFile.parse("0001-x.patch", TEXT)
  assert (patch.subject, patch.fields, patch.diff) == (
      "Use a smaller learning rate", "Description: It diverges.\n", DIFF)
  assert patch.text() == TEXT


@pytest.mark.parametrize("text, words", [
    ("", "is empty"),
    (TEXT.replace("\n", "\r\n"), "CRLF"),
    (f"Description: no subject\n---\n{DIFF}", "no header"),
    ("Subject: Prose\n---\nJust words.\n", "no `diff --git`"),
])
def test_a_broken_patch_file_is_named_with_the_fix(text, words):
  with pytest.raises(ToolError, match="patches/0001-x.patch") as caught:
    PatchFile.parse("0001-x.patch", text)
  assert words in str(caught.value)


def test_header_fields_read_a_folded_field_and_only_that_field():
  patch = PatchFile("p", "S", "Description: one\n two\nAuthor: A\n", DIFF)
  assert patch.field("Description") == "one\n two"
  assert patch.field("Author") == "A"
  assert patch.field("Forwarded") is None


def test_free_text_in_a_commit_message_becomes_a_description_field():
  assert PatchFile.header_fields_from_message("\nFirst line.\n\nSecond paragraph.\n") == (
      "Description: First line.\n .\n Second paragraph.\n")
  assert PatchFile.header_fields_from_message("Author: A\nForwarded: no\n") == (
      "Author: A\nForwarded: no\n")
  assert PatchFile.header_fields_from_message("") == ""


def test_the_patch_name_trailer_goes_into_the_commit_and_not_back_into_the_header():
  patch = PatchFile("0003-old-name.patch", "New subject", "Description: Why.\n", DIFF)
  message = patch.commit_message()
  assert message == "New subject\n\nDescription: Why.\nPatch-Name: 0003-old-name.patch\n"
  body = message.partition("\n")[2]
  assert PatchFile.name_from_message(body) == "0003-old-name.patch"
  assert PatchFile.header_fields_from_message(body) == "Description: Why.\n"
  assert PatchFile.name_from_message("\nDescription: no trailer\n") is None


# --- names of new patches ---------------------------------------------------------------------

@pytest.mark.parametrize("subject, slug", [
    ("Tune Decay: HPU & CPU (v2)!", "tune-decay-hpu-cpu-v2"),
    ("Use tf.compat.v1 in run_pretraining.py", "use-tf-compat-v1-in-run-pretraining-py"),
    ("!!!", "patch"),
    ("Average gradients over Horovod workers in create_optimizer and say why",
     "average-gradients-over-horovod-workers-in-create"),
])
def test_a_slug_is_lower_case_words_of_at_most_fifty_characters(subject, slug):
  assert export.slug(subject) == slug
  assert len(export.slug(subject)) <= 50


def test_a_taken_name_gets_a_suffix():
  taken = {"0003-x.patch", "0003-x-2.patch"}
  assert export._unique("0003-x.patch", taken) == "0003-x-3.patch"  # pylint: disable=protected-access
  assert export._unique("0004-y.patch", taken) == "0004-y.patch"  # pylint: disable=protected-access


# --- hunks and the lint -----------------------------------------------------------------------

def test_hunks_are_numbered_per_file_with_their_old_start():
  file, = diffs.parse(DIFF)
  assert file.path == "modeling.py" and not file.creates
  assert [(h.number, h.old_start) for h in file.hunks] == [(1, 10), (2, 20)]
  assert (file.hunks[0].removed, file.hunks[0].added) == (["  return 1e-4"], ["  return 5e-5"])
  assert diffs.changed_lines(DIFF) == (2, 2)


def test_a_failed_hunk_is_named_by_file_number_and_header():
  where = patching._where("error: patch failed: modeling.py:20\n", DIFF)  # pylint: disable=protected-access
  assert where == "modeling.py, hunk #2 (@@ -20,2 +20,2 @@), context not found"


def lint_of(diff, fields="Description: Why.\n", overlay=()):
  return lint.lint_patch(PatchFile("p", "Subject", fields, diff), set(overlay))


def test_reindenting_python_is_a_change_not_whitespace():
  moved = DIFF.replace("+  return 0.02", "+    return 0.01")  # into a block, in Python
  assert lint_of(moved) == []


def test_a_clean_patch_passes_the_lint():
  assert lint_of(DIFF) == []
  # a header of 16 lines (Subject, Description and 14 more) for 4 changed lines: at the limit
  assert lint_of(DIFF, "Description: Why.\n" + " More.\n" * 14) == []


@pytest.mark.parametrize("diff, fields, overlay, problem", [
    (DIFF, "", (), "header has no Description"),
    (DIFF.replace("+  return 5e-5", "+  return 5e-5 "), None, (), "adds trailing whitespace"),
    (DIFF.replace("+  return 0.02", "+  return  0.01 "), None, (), "changes only whitespace"),
    (DIFF.replace("modeling.py", "README.md").replace("+  return 0.02", "+    return 0.01"),
     None, (), "changes only whitespace"),
    (DIFF.replace("\n--- a/", "\nnew file mode 100644\n--- a/"), None, (), "belongs in overlay/"),
    (DIFF, None, ("modeling.py",), "is also an overlay file"),
    (DIFF.replace("@@ -10", "Binary files a and b differ\n@@ -10"), None, (), "binary file"),
    (DIFF, "Description: Why.\n" + " More.\n" * 15, (), "header of 17 lines for 4 changed"),
])
def test_each_lint_rule_names_its_problem(diff, fields, overlay, problem):
  found = lint_of(diff, "Description: Why.\n" if fields is None else fields, overlay)
  assert any(problem in p for p in found), found


# --- the lock ---------------------------------------------------------------------------------

def lock_text(**values):
  return Lock(**{"url": "u", "commit": SHA, "tree": SHA, "tensorflow": "2.15.1",
                 "converted_tree": SHA, **values}).text()


def test_the_lock_reads_back_what_it_writes(tmp_path):
  path = tmp_path / "upstream.lock"
  path.write_text(lock_text())
  assert Lock.read(path) == Lock("u", SHA, SHA, "2.15.1", SHA)


@pytest.mark.parametrize("old, new", [
    (f'tree = "{SHA}"', 'tree = "abc"'),
    ('tensorflow = "2.15.1"', "tensorflow = 2"),
    ("[converter]\n", "converter = 1\n"),  # a table given a plain value
])
def test_a_bad_lock_value_is_named_at_its_line(tmp_path, old, new):
  path = tmp_path / "upstream.lock"
  text = lock_text()
  assert old in text
  text = text.replace(old, new)
  path.write_text(text)
  line = text.splitlines().index(new.strip()) + 1  # the line the edit is on
  assert line > 5
  with pytest.raises(ToolError, match=rf"upstream.lock line {line}:"):
    Lock.read(path)


# --- the record -------------------------------------------------------------------------------

def record_dict(**changes):
  return {**Record("i", SHA, SHA, SHA, SHA, [["p", SHA]], "d").to_dict(), **changes}


def test_a_record_without_a_schema_is_schema_one():
  data = record_dict()
  del data["schema"]
  assert Record.from_dict(data, "r").schema == SCHEMA == 1


@pytest.mark.parametrize("data, found", [
    (record_dict(schema=2), "schema 2"),
    (record_dict(extra=1), "schema 1"),
    ({"inputs": "i"}, "schema 1"),
    ([1, 2], "not a record"),
])
def test_a_record_this_tool_cannot_read_is_a_clear_error(data, found):
  with pytest.raises(ToolError, match="apply --force") as caught:
    Record.from_dict(data, "tree/.git/albert-patches.json")
  assert found in str(caught.value)


# --- the command line, in process -------------------------------------------------------------

@pytest.fixture
def bare_project(tmp_path):
  """A project with an empty series and one overlay file, and no tree built."""
  (tmp_path / "patches").mkdir()
  (tmp_path / "patches" / "series").write_text("# The series.\n")
  (tmp_path / "overlay").mkdir()
  (tmp_path / "overlay" / "extra.py").write_text("X = 1\n")
  (tmp_path / "upstream.lock").write_text(lock_text())
  return tmp_path


def test_main_runs_a_command_on_the_project_it_is_given(bare_project, capsys):
  assert cli.main(["status"], root=bare_project) == 0
  out = capsys.readouterr().out
  assert "overlay/: 1 files" in out
  assert f"tree {bare_project / 'build' / 'albert'}: not built" in out


def test_main_prints_a_tool_error_as_one_line(bare_project, capsys):
  (bare_project / "patches" / "series").write_text("0001-missing.patch\n")
  assert cli.main(["status"], root=bare_project) == 1
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and "0001-missing.patch" in err[0]


@pytest.mark.parametrize("argv, words", [
    (["frobnicate"], "frobnicate"),
    (["regenerate", "--upstream", "x"], "--upstream"),
    (["check", "--out", "x"], "--out"),
    (["status", "--force"], "--force"),
])
def test_an_option_a_command_does_not_take_is_refused(bare_project, capsys, argv, words):
  with pytest.raises(SystemExit) as caught:
    cli.main(argv, root=bare_project)
  assert caught.value.code == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 1 and words in err[0] and "--help" in err[0]


# --- writing patches/ and overlay/ in one step ------------------------------------------------

class _Quiet:
  def __init__(self):
    self.lines = []

  def say(self, text):
    self.lines.append(text)


def test_a_plan_is_written_whole_and_files_that_match_are_not_touched(bare_project):
  project = Project(bare_project)
  series = (bare_project / "patches" / "series").read_bytes()
  planned = export.Plan({"patches/series": series, "patches/0001-x.patch": TEXT.encode(),
                         "overlay/sub/new.py": b"Y = 2\n"}, [("0001-x.patch", SHA)])
  mtime = (bare_project / "patches" / "series").stat().st_mtime_ns
  progress = _Quiet()
  assert planned.write(project, progress) == 3  # two new files, and overlay/extra.py removed
  assert (bare_project / "patches" / "0001-x.patch").read_text() == TEXT
  assert (bare_project / "overlay" / "sub" / "new.py").read_bytes() == b"Y = 2\n"
  assert not (bare_project / "overlay" / "extra.py").exists()
  assert (bare_project / "patches" / "series").stat().st_mtime_ns == mtime
  assert not list(bare_project.rglob(f"*{export.STAGED}"))


def test_a_plan_that_cannot_be_written_changes_nothing(bare_project):
  from .tool_project import read_dir  # pylint: disable=import-outside-toplevel
  (bare_project / "overlay" / "sub").mkdir()
  (bare_project / "overlay" / "sub" / "in-the-way").mkdir()
  before = read_dir(bare_project, modes=True)
  dirs = sorted(p for p in bare_project.rglob("*") if p.is_dir())
  planned = export.Plan({"patches/0001-x.patch": TEXT.encode(), "overlay/new/a.py": b"A\n",
                         "overlay/sub/in-the-way": b"B\n"}, [("0001-x.patch", SHA)])
  with pytest.raises(ToolError, match="in-the-way: it is a directory"):
    planned.write(Project(bare_project), _Quiet())
  assert read_dir(bare_project, modes=True) == before
  assert sorted(p for p in bare_project.rglob("*") if p.is_dir()) == dirs


# --- what patches/series and overlay/ may hold ------------------------------------------------

def _series_of(bare_project, entries, files=()):
  (bare_project / "patches" / "series").write_text("# The series.\n" + "".join(
      f"{entry}\n" for entry in entries))
  for rel in files:
    (bare_project / "patches" / rel).parent.mkdir(parents=True, exist_ok=True)
    (bare_project / "patches" / rel).write_text(TEXT)
  return Project(bare_project)


def test_series_entries_may_be_in_one_topic_folder(bare_project):
  entries = ["layer-norm/0001-x.patch", "0002-y.patch", "horovod/0003-z.patch"]
  assert _series_of(bare_project, entries, entries).series() == entries
  patch = Project(bare_project).patch("horovod/0003-z.patch")
  assert (patch.topic, patch.file_name) == ("horovod", "0003-z.patch")


@pytest.mark.parametrize("entry", [
    "../outside.patch", "/etc/passwd.patch", "horovod/../../x.patch", "a/b/0001-x.patch",
    "./0001-x.patch", "Horovod/0001-x.patch", "horovod\\0001-x.patch", "0001-x.txt",
])
def test_a_series_entry_that_could_leave_patches_is_refused(bare_project, entry):
  with pytest.raises(ToolError, match="not a patch file inside patches/") as caught:
    _series_of(bare_project, [entry]).series()
  assert entry in str(caught.value) and "line 2" in str(caught.value)


def test_a_series_entry_through_a_symlink_is_refused(bare_project, tmp_path_factory):
  outside = tmp_path_factory.mktemp("outside")
  (outside / "0001-x.patch").write_text(TEXT)
  (bare_project / "patches" / "horovod").symlink_to(outside)
  with pytest.raises(ToolError, match="patches/horovod is a symlink"):
    _series_of(bare_project, ["horovod/0001-x.patch"]).series()
  (bare_project / "patches" / "0002-y.patch").symlink_to(outside / "0001-x.patch")
  with pytest.raises(ToolError, match="patches/0002-y.patch is a symlink"):
    _series_of(bare_project, ["0002-y.patch"]).series()


def test_a_patch_in_a_folder_but_not_in_the_series_is_named(bare_project):
  project = _series_of(bare_project, ["0001-x.patch"], ["0001-x.patch", "hooks/0002-y.patch"])
  with pytest.raises(ToolError, match="patches/hooks/0002-y.patch is not in patches/series"):
    project.series()


@pytest.mark.parametrize("kind", ["symlink to a file", "symlink to a folder", "fifo"])
def test_overlay_holds_regular_files_only(bare_project, tmp_path_factory, kind):
  outside = tmp_path_factory.mktemp("outside")
  (outside / "secret.py").write_text("KEY = 1\n")
  leak = bare_project / "overlay" / "leak.py"
  if kind == "symlink to a file":
    leak.symlink_to(outside / "secret.py")
  elif kind == "symlink to a folder":
    leak.symlink_to(outside)
  else:
    os.mkfifo(leak)
  with pytest.raises(ToolError, match="overlay/leak.py is "):
    Project(bare_project).overlay_files()


def test_the_topic_trailer_goes_into_the_commit_and_names_the_folder():
  patch = PatchFile("hooks/0018-x.patch", "Add hooks", "Description: Why.\n", DIFF)
  message = patch.commit_message()
  assert message == ("Add hooks\n\nDescription: Why.\nPatch-Name: 0018-x.patch\n"
                     "Patch-Topic: hooks\n")
  body = message.partition("\n")[2]
  assert PatchFile.trailer(body, "Patch-Topic") == "hooks"
  assert PatchFile.header_fields_from_message(body) == "Description: Why.\n"


def test_a_plan_never_writes_outside_patches_and_overlay(bare_project):
  for rel in ["patches/../outside.patch", "overlay/../../x.py", "README.md"]:
    planned = export.Plan({rel: b"x\n"}, [])
    with pytest.raises(ToolError, match="outside patches/ and overlay/"):
      planned.write(Project(bare_project), _Quiet())
    assert not (bare_project / "outside.patch").exists()
    assert not (bare_project.parent / "x.py").exists()


def test_a_plan_removes_a_topic_folder_it_emptied(bare_project):
  project = _series_of(bare_project, ["hooks/0001-x.patch"], ["hooks/0001-x.patch"])
  planned = export.Plan({"patches/series": b"training/0001-x.patch\n",
                         "patches/training/0001-x.patch": TEXT.encode(),
                         "overlay/extra.py": b"X = 1\n"}, [("training/0001-x.patch", SHA)])
  planned.write(project, _Quiet())
  assert not (bare_project / "patches" / "hooks").exists()
  assert project.series() == ["training/0001-x.patch"]
