"""Topic folders in patches/, and the rule that nothing the tool reads or writes leaves its folder.

A series entry is `topic/NNNN-name.patch` (or a file at the top of patches/); the folder is part
of a patch's identity, carried in the tree by a `Patch-Topic:` trailer beside `Patch-Name:`.
Series entries, overlay files and the names a tree's commits give must all stay inside patches/
and overlay/: anything else is one `error:` line, before anything is read or written.
"""
import os
import re
import shutil

import pytest

from .tool_project import (BATCH_PATCH, BATCH_SUBJECT, LR_PATCH, LR_SUBJECT,
                           assert_refused, edit, git)

LR_ENTRY = f"optimizer/{LR_PATCH}"
BATCH_ENTRY = f"run/{BATCH_PATCH}"


@pytest.fixture
def foldered(project):
  """The template project with its two patches moved into topic folders, the tree rebuilt."""
  for entry, name in ((LR_ENTRY, LR_PATCH), (BATCH_ENTRY, BATCH_PATCH)):
    (project.patches / entry).parent.mkdir()
    (project.patches / name).rename(project.patches / entry)
    edit(project.patches / "series", name, entry)
  project.ok("apply", "--force")
  return project


def test_folders_build_and_regenerate_byte_stably(foldered):
  assert foldered.series() == [LR_ENTRY, BATCH_ENTRY]
  message = foldered.git("log", "-1", "--format=%B").strip()
  assert message.endswith(f"Patch-Name: {BATCH_PATCH}\nPatch-Topic: run"), message
  files, mtimes = foldered.files(), foldered.mtimes()
  assert "already match" in foldered.ok("regenerate").stdout
  assert (foldered.files(), foldered.mtimes()) == (files, mtimes)
  assert "nothing to do" in foldered.ok("apply").stdout
  status = foldered.ok("status").stdout
  assert LR_ENTRY in status and "clean" in status
  assert f"applies   {BATCH_ENTRY}" in foldered.ok("check").stdout


def test_new_patch_goes_into_the_topic_it_names(foldered):
  edit(foldered.tree / "run.py", "tiny", "small")
  proc = foldered.ok("regenerate", "--new", "Say small", "--topic", "run")
  entry = "run/0003-say-small.patch"
  assert foldered.series() == [LR_ENTRY, BATCH_ENTRY, entry], proc.stdout
  text = (foldered.patches / entry).read_text()
  assert text.startswith("Subject: Say small\n---\n") and "Patch-Topic" not in text
  assert "already match" in foldered.ok("regenerate").stdout


def test_a_topic_trailer_written_in_the_tree_names_the_folder(foldered):
  edit(foldered.tree / "modeling.py", "return 0.01", "return 0.02")
  git(foldered.tree, "commit", "-q", "-am", "Decay faster", "-m", "Why.\n\nPatch-Topic: schedule")
  foldered.ok("regenerate")
  assert foldered.series()[-1] == "schedule/0003-decay-faster.patch"
  header = (foldered.patches / "schedule/0003-decay-faster.patch").read_text().split("---\n")[0]
  assert header == "Subject: Decay faster\nDescription: Why.\n"


def test_a_reworded_topic_moves_the_patch_and_keeps_its_header(foldered):
  header = (foldered.patches / LR_ENTRY).read_text().split("---\n")[0]
  overlay = foldered.record()["overlay"]
  git(foldered.tree, "rebase", "-q", "-x",
      "git commit -q --amend -m \"$(git log -1 --format=%B | sed 's/^Patch-Topic: optimizer$/"
      "Patch-Topic: schedule/')\"", overlay)
  proc = foldered.ok("regenerate")
  assert foldered.series() == [f"schedule/{LR_PATCH}", BATCH_ENTRY], proc.stdout
  assert (foldered.patches / f"schedule/{LR_PATCH}").read_text().split("---\n")[0] == header
  assert not (foldered.patches / "optimizer").exists()


@pytest.mark.parametrize("topic", ["../../evil", "a/b", "Upper", "..", ""])
def test_a_topic_that_is_not_a_folder_name_is_refused(foldered, topic):
  edit(foldered.tree / "run.py", "tiny", "small")
  git(foldered.tree, "commit", "-q", "-am", "Say small", "-m", f"Patch-Topic: {topic}")
  assert_refused(foldered, "regenerate", expect=["Patch-Topic", "not a folder name"])


@pytest.mark.parametrize("topic", ["../x", "a/b"])
def test_a_topic_option_that_is_not_a_folder_name_is_refused(foldered, topic):
  edit(foldered.tree / "run.py", "tiny", "small")
  assert_refused(foldered, "regenerate", "--new", "Say small", "--topic", topic,
                 expect=[f"--topic {topic}"])


def test_a_patch_name_trailer_cannot_name_a_file_outside_patches(foldered):
  edit(foldered.tree / "run.py", "tiny", "small")
  git(foldered.tree, "commit", "-q", "-am", "Say small", "-m",
      "Patch-Name: ../../../x.patch\nPatch-Topic: run")
  before = set(os.listdir(foldered.root.parent))
  foldered.ok("regenerate")
  assert foldered.series()[-1] == "run/0003-say-small.patch"
  assert set(os.listdir(foldered.root.parent)) == before
  assert not list(foldered.root.glob("*.patch"))


def test_update_across_a_conflict_keeps_the_folders(foldered, upstream):
  files = foldered.files()
  assert LR_ENTRY in foldered.fails("update", "--to", upstream.conflict)
  path = foldered.tree / "modeling.py"
  path.write_text(re.sub(r"<<<<<<<[^\n]*\n.*?=======\n(.*?)>>>>>>>[^\n]*\n", r"\1",
                         path.read_text(), flags=re.DOTALL))
  git(foldered.tree, "add", "modeling.py")
  foldered.ok("update", "--continue")
  assert foldered.series() == [LR_ENTRY, BATCH_ENTRY]
  assert files[f"patches/{BATCH_ENTRY}"] == foldered.files()[f"patches/{BATCH_ENTRY}"]
  assert foldered.read_lock()["upstream"]["commit"] == upstream.conflict
  assert "already match" in foldered.ok("regenerate").stdout


# --- nothing leaves its folder ----------------------------------------------------------------

@pytest.mark.parametrize("command", [["apply"], ["check"], ["regenerate"], ["status"],
                                     ["update", "--to", "0" * 40]])
@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_a_series_entry_outside_patches_is_refused_by_every_command(project, command, where):
  outside = project.root / "outside.patch"
  shutil.copy(project.patches / BATCH_PATCH, outside)
  entry = "../outside.patch" if where == "parent" else str(outside)
  edit(project.patches / "series", BATCH_PATCH, entry)
  (project.patches / BATCH_PATCH).unlink()
  assert_refused(project, *command, expect=[entry, "not a patch file inside patches/"])


def test_a_series_entry_through_a_symlink_out_is_refused(project, tmp_path):
  outside = tmp_path / "elsewhere"
  outside.mkdir()
  shutil.move(project.patches / BATCH_PATCH, outside / BATCH_PATCH)
  (project.patches / "run").symlink_to(outside)
  edit(project.patches / "series", BATCH_PATCH, f"run/{BATCH_PATCH}")
  for command in ("apply", "regenerate", "status"):
    assert_refused(project, command, expect=["patches/run is a symlink"])


@pytest.mark.parametrize("command", ["apply", "check", "regenerate", "status"])
def test_a_symlink_in_the_overlay_is_refused(project, tmp_path, command):
  secret = tmp_path / "secret.py"
  secret.write_text("TOKEN = 'not for the tree'\n")
  (project.root / "overlay" / "leak.py").symlink_to(secret)
  assert_refused(project, command, expect=["overlay/leak.py is a symlink"])
  assert "not for the tree" not in (project.tree / "hpu_helpers.py").read_text()
  assert not (project.tree / "leak.py").exists()


def test_a_symlink_committed_in_the_tree_is_not_written_to_the_overlay(project):
  os.symlink("/etc/hostname", project.tree / "leak.py")
  git(project.tree, "add", "leak.py")
  git(project.tree, "commit", "-q", "-m", "Add a link")
  assert_refused(project, "regenerate", expect=["leak.py is a symlink", "regular files only"])
  assert not (project.root / "overlay" / "leak.py").exists()


def test_subject_and_trailer_names_still_find_their_patch(foldered):
  # a commit without trailers (made by hand) finds its patch by subject, folder included
  overlay = foldered.record()["overlay"]
  git(foldered.tree, "rebase", "-q", "-x",
      "git commit -q --amend -m \"$(git log -1 --format=%s)\"", overlay)
  assert foldered.subjects()[-2:] == [LR_SUBJECT, BATCH_SUBJECT]
  assert "already match" in foldered.ok("regenerate").stdout
