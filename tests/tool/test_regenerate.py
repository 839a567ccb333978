"""tools/apply_patches.py regenerate: the tree's commits back into patches/ and overlay/."""
import os
import re

import pytest

from .tool_project import (BATCH_PATCH, BATCH_SUBJECT, LR_PATCH, LR_SUBJECT,
                           OVERLAY_FILE, OVERLAY_TEXT, commit_files, edit, git)


def changed_files(before, after):
  return sorted(rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel))


def assert_apply_is_a_no_op(project):
  head = project.git("rev-parse", "HEAD").strip()
  proc = project.ok("apply")
  assert "nothing to do" in proc.stdout, proc.stdout
  assert project.git("rev-parse", "HEAD").strip() == head


def sha_of(project, subject):
  for line in project.git("log", "--format=%H %s").splitlines():
    sha, text = line.split(" ", 1)
    if text == subject:
      return sha
  raise AssertionError(f"no commit {subject!r}")


def test_no_edits_leaves_the_project_untouched(project):
  files, mtimes = project.files(), project.mtimes()
  proc = project.ok("regenerate")
  assert "already match" in proc.stdout
  assert project.files() == files
  assert project.mtimes() == mtimes
  assert_apply_is_a_no_op(project)


def test_fixup_updates_only_that_patch(project):
  files = project.files()
  lr = sha_of(project, LR_SUBJECT)
  edit(project.tree / "modeling.py", "return 1000", "return 2000")
  git(project.tree, "commit", "-q", "-a", f"--fixup={lr}")
  overlay = project.record()["overlay"]
  git(project.tree, "rebase", "-q", "-i", "--autosquash", overlay)
  assert project.subjects()[-2:] == [LR_SUBJECT, BATCH_SUBJECT]
  proc = project.ok("regenerate")
  after = project.files()
  assert changed_files(files, after) == [f"patches/{LR_PATCH}"], proc.stdout
  old, new = files[f"patches/{LR_PATCH}"].decode(), after[f"patches/{LR_PATCH}"].decode()
  header = old.split("\n---\n", 1)[0]
  assert new.split("\n---\n", 1)[0] == header
  assert header == f"Subject: {LR_SUBJECT}\nDescription: The larger rate diverges on HPUs."
  assert "+  return 2000" in new and "+  return 5e-5" in new
  assert_apply_is_a_no_op(project)


def test_amended_last_commit_updates_only_that_patch(project):
  files = project.files()
  edit(project.tree / "run.py", '"Batch size."', '"Batch size per HPU."')
  git(project.tree, "commit", "-q", "-a", "--amend", "--no-edit")
  project.ok("regenerate")
  after = project.files()
  assert changed_files(files, after) == [f"patches/{BATCH_PATCH}"]
  assert after[f"patches/{BATCH_PATCH}"].startswith(
      f"Subject: {BATCH_SUBJECT}\nDescription: HPUs have memory to spare.\n---\n".encode())
  assert b'"Batch size per HPU."' in after[f"patches/{BATCH_PATCH}"]
  assert_apply_is_a_no_op(project)


def test_header_edited_in_patches_survives_regenerate(project):
  patch = project.patches / LR_PATCH
  text = patch.read_text()
  edited = text.replace("Description: The larger rate diverges on HPUs.",
                        "Description: The larger rate diverges on HPUs.\n"
                        " Seed item: optimization.py.\nForwarded: not-needed")
  assert edited != text
  patch.write_text(edited)
  edit(project.tree / "modeling.py", "return 1000", "return 3000")
  git(project.tree, "commit", "-q", "-a", f"--fixup={sha_of(project, LR_SUBJECT)}")
  git(project.tree, "rebase", "-q", "-i", "--autosquash", project.record()["overlay"])
  project.ok("regenerate")
  after = patch.read_text()
  assert after.split("\n---\n", 1)[0] == edited.split("\n---\n", 1)[0]
  assert "+  return 3000" in after


def test_new_commit_becomes_a_new_numbered_patch(project):
  files = project.files()
  edit(project.tree / "modeling.py", "return 0.01", "return 0.02")
  git(project.tree, "commit", "-q", "-am", "Tune Decay: HPU & CPU (v2)!",
      "-m", "Decay more.\n\nSecond paragraph.")
  proc = project.ok("regenerate")
  name = "0003-tune-decay-hpu-cpu-v2.patch"
  assert project.series() == [LR_PATCH, BATCH_PATCH, name]
  assert (project.patches / "series").read_text().startswith("# The patch series")
  after = project.files()
  assert changed_files(files, after) == [f"patches/{name}", "patches/series"], proc.stdout
  text = after[f"patches/{name}"].decode()
  assert text.startswith("Subject: Tune Decay: HPU & CPU (v2)!\n"
                         "Description: Decay more.\n .\n Second paragraph.\n---\n"), text
  assert "-  return 0.01\n+  return 0.02\n" in text
  assert_apply_is_a_no_op(project)
  # and the patch is what a fresh build applies
  head_tree = project.git("rev-parse", "HEAD^{tree}").strip()
  proc = project.ok("apply", "--out", str(project.root / "build" / "again"))
  assert git(project.root / "build" / "again", "rev-parse", "HEAD^{tree}").strip() == head_tree


def test_dropped_commit_removes_its_patch(project):
  lr = sha_of(project, LR_SUBJECT)
  git(project.tree, "rebase", "-q", "--onto", f"{lr}^", lr)
  assert project.subjects()[-1] == BATCH_SUBJECT and LR_SUBJECT not in project.subjects()
  files = project.files()
  proc = project.ok("regenerate")
  assert f"remove  patches/{LR_PATCH}" in proc.stdout
  assert not (project.patches / LR_PATCH).exists()
  assert project.series() == [BATCH_PATCH]
  assert changed_files(files, project.files()) == [f"patches/{LR_PATCH}", "patches/series"]
  assert_apply_is_a_no_op(project)


def test_overlay_edits_go_to_overlay_never_into_a_patch(project):
  files = project.files()
  commit_files(project.tree, "Name the device", {OVERLAY_FILE: OVERLAY_TEXT.replace("HPU", "hpu")})
  commit_files(project.tree, "Add HPU extras", {
      "hpu/extra.py": "EXTRA = 1\n",
      "modeling.py": (project.tree / "modeling.py").read_text().replace("return 0.01",
                                                                        "return 0.03")})
  project.ok("regenerate")
  after = project.files()
  name = "0003-add-hpu-extras.patch"
  assert changed_files(files, after) == sorted([f"overlay/{OVERLAY_FILE}", "overlay/hpu/extra.py",
                                                f"patches/{name}", "patches/series"])
  assert project.series() == [LR_PATCH, BATCH_PATCH, name]
  assert after["overlay/hpu/extra.py"] == b"EXTRA = 1\n"
  assert b"hpu" in after[f"overlay/{OVERLAY_FILE}"]
  patch = after[f"patches/{name}"].decode()
  assert re.findall(r"^diff --git .*$", patch, re.MULTILINE) == [
      "diff --git a/modeling.py b/modeling.py"]
  for text in after:
    if text.startswith("patches/"):
      assert OVERLAY_FILE.encode() not in after[text] and b"extra.py" not in after[text]
  assert_apply_is_a_no_op(project)


def test_uncommitted_edits_are_refused_then_new(project):
  edit(project.tree / "run.py", "Runs the tiny model.", "Runs the tiny model on HPUs.")
  (project.tree / "notes.py").write_text("NOTE = 1\n")
  files, state = project.files(), project.tree_state()
  message = project.fails("regenerate")
  assert "run.py" in message and "notes.py" in message
  assert "--into" in message and "--new" in message
  assert project.files() == files and project.tree_state() == state

  project.ok("regenerate", "--new", "Say where it runs")
  name = "0003-say-where-it-runs.patch"
  assert project.series() == [LR_PATCH, BATCH_PATCH, name]
  patch = (project.patches / name).read_text()
  assert patch.startswith("Subject: Say where it runs\n---\n")
  assert "+\"\"\"Runs the tiny model on HPUs.\"\"\"" in patch and "notes.py" not in patch
  assert (project.root / "overlay" / "notes.py").read_text() == "NOTE = 1\n"
  assert project.git("status", "--porcelain") == ""
  assert_apply_is_a_no_op(project)


@pytest.mark.parametrize("target", [LR_PATCH, f"patches/{LR_PATCH}", LR_SUBJECT])
def test_into_folds_uncommitted_edits_into_a_patch(project, target):
  files = project.files()
  edit(project.tree / "modeling.py", "return 1000", "return 3000")
  project.ok("regenerate", "--into", target)
  after = project.files()
  assert changed_files(files, after) == [f"patches/{LR_PATCH}"]
  text = after[f"patches/{LR_PATCH}"].decode()
  assert "+  return 3000" in text and "+  return 5e-5" in text
  assert text.startswith(f"Subject: {LR_SUBJECT}\nDescription: The larger rate diverges")
  assert project.subjects()[-2:] == [LR_SUBJECT, BATCH_SUBJECT]
  assert project.git("status", "--porcelain") == ""
  assert_apply_is_a_no_op(project)


def test_directory_not_built_by_the_tool(project, tmp_path):
  other = tmp_path / "other"
  other.mkdir()
  git(other, "init", "-q")
  commit_files(other, "Mine", {"a.py": "A = 1\n"})
  files = project.files()
  message = project.fails("regenerate", "--out", str(other))
  assert str(other) in message and "not built by" in message
  assert project.files() == files


def test_patch_files_are_plain_and_stable_under_any_git_config(project, tmp_path):
  hostile = tmp_path / "gitconfig"
  hostile.write_text("[diff]\n  noprefix = true\n  mnemonicPrefix = true\n  algorithm = patience\n"
                     "  renames = copies\n  context = 8\n  external = false\n"
                     "[core]\n  autocrlf = true\n[color]\n  ui = always\n"
                     "[format]\n  signature = sig\n")
  commit_files(project.tree, "Rename the log helper", {
      "modeling.py": (project.tree / "modeling.py").read_text().replace("log_sizes", "log_dims"),
      "run.py": (project.tree / "run.py").read_text().replace("log_sizes", "log_dims")})
  # the same settings in the tree's own config, which the environment cannot keep out
  with open(project.tree / ".git" / "config", "a", encoding="utf-8") as config:
    config.write(hostile.read_text())
  proc = project.run("regenerate", env={"GIT_CONFIG_GLOBAL": hostile})
  assert proc.returncode == 0, proc.stderr
  name = "0003-rename-the-log-helper.patch"
  data = (project.patches / name).read_bytes()
  assert b"\r" not in data and b"\x1b" not in data
  text = data.decode()
  assert re.findall(r"^diff --git .*$", text, re.MULTILINE) == [
      "diff --git a/modeling.py b/modeling.py", "diff --git a/run.py b/run.py"]
  assert "\n--- a/modeling.py\n+++ b/modeling.py\n" in text
  assert not re.search(r"^index ", text, re.MULTILINE)
  assert not re.search(r"\b[0-9a-f]{7,40}\b", text), text
  assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d|^Date:|^From |^Author:", text, re.MULTILINE)
  assert not re.search(r"files? changed|\| +\d+ [+-]", text)
  assert all(h.count(",") == 2 for h in re.findall(r"^@@ .* @@", text, re.MULTILINE))
  # three lines of context, whatever diff.context says
  hunk = text.split("\n@@ ", 1)[1].split("\n@@ ", 1)[0].split("\ndiff --git", 1)[0]
  lines = hunk.splitlines()[1:]
  assert [line[:1] for line in lines[:3]] == [" ", " ", " "] and lines[3][:1] == "-"
  # the same patch file comes out of a neutral config
  os.remove(project.patches / name)
  (project.patches / "series").write_text(
      (project.patches / "series").read_text().replace(name + "\n", ""))
  project.ok("regenerate")
  assert (project.patches / name).read_bytes() == data


def test_a_reworded_subject_keeps_the_patch_file(project):
  message = project.git("log", "-1", "--format=%B")
  assert f"\nPatch-Name: {BATCH_PATCH}\n" in message  # the trailer apply writes
  body = message.partition("\n")[2].strip("\n")
  git(project.tree, "commit", "-q", "--amend", "-m", "Use a batch size of 32 by default",
      "-m", body)
  files = project.files()
  project.ok("regenerate")
  assert project.series() == [LR_PATCH, BATCH_PATCH]
  assert changed_files(files, project.files()) == [f"patches/{BATCH_PATCH}"]
  text = (project.patches / BATCH_PATCH).read_text()
  assert text.startswith("Subject: Use a batch size of 32 by default\n"
                         "Description: HPUs have memory to spare.\n---\n"), text
  assert "Patch-Name" not in text
  assert_apply_is_a_no_op(project)


def test_a_commit_without_the_trailer_is_matched_by_subject(project):
  # a commit message written by hand, as before the trailer existed
  git(project.tree, "commit", "-q", "--amend", "-m", BATCH_SUBJECT, "-m",
      "HPUs have memory to spare.")
  files = project.files()
  project.ok("regenerate")
  assert project.series() == [LR_PATCH, BATCH_PATCH]
  assert project.files() == files
