"""tools/apply_patches.py update (3-way replay onto another upstream commit) and status."""
import re
import shutil

from .tool_project import (BATCH_PATCH, BATCH_SUBJECT, CONVERT_SUBJECT, LR_PATCH,
                           LR_SUBJECT, OVERLAY_SUBJECT, commit_files, edit)

STATE = ".git/albert-patches-update.json"


def report(proc):
  """{patch name: 'unchanged' or 'refreshed'} from update's output."""
  found = {}
  for line in proc.stdout.splitlines():
    words = line.split()
    if len(words) == 2 and words[0] in ("unchanged", "refreshed"):
      found[words[1]] = words[0]
  return found


def start_conflict(project, upstream):
  proc = project.run("update", "--to", upstream.conflict)
  assert proc.returncode != 0
  assert (project.tree / STATE).is_file()
  return proc


def test_update_rebases_cleanly(project, upstream):
  files = project.files()
  proc = project.ok("update", "--to", upstream.elsewhere)
  assert report(proc) == {LR_PATCH: "refreshed", BATCH_PATCH: "unchanged"}, proc.stdout
  assert proc.stdout.splitlines()[-1].startswith(f"done: upstream.lock now pins "
                                                 f"{upstream.elsewhere[:12]}")
  lock = project.read_lock()
  assert lock["upstream"]["commit"] == upstream.elsewhere
  assert lock["upstream"]["tree"] == upstream.tree_of(upstream.elsewhere)
  assert lock["upstream"]["url"] == str(upstream.path)
  # the tree: the new upstream, its conversion, the overlay, the replayed patches
  assert project.subjects()[-5:] == ["Import os and re in modeling", CONVERT_SUBJECT,
                                     OVERLAY_SUBJECT, LR_SUBJECT, BATCH_SUBJECT]
  assert project.git("rev-parse", "HEAD~4").strip() == upstream.elsewhere
  assert lock["converter"]["converted_tree"] == project.git("rev-parse", "HEAD~3^{tree}").strip()
  assert "import os\nimport re\n" in (project.tree / "modeling.py").read_text()
  assert "return 5e-5" in (project.tree / "modeling.py").read_text()
  assert project.git("status", "--porcelain") == ""
  assert not (project.tree / STATE).exists()
  # only the refreshed patch and the lock were written; the patch moved by two lines
  after = project.files()
  assert sorted(r for r in set(files) | set(after) if files.get(r) != after.get(r)) == [
      f"patches/{LR_PATCH}", "upstream.lock"]
  old_patch = files[f"patches/{LR_PATCH}"].decode()
  new_patch = after[f"patches/{LR_PATCH}"].decode()
  old_start = int(re.search(r"^@@ -(\d+)", old_patch, re.MULTILINE).group(1))
  assert re.search(r"^@@ -(\d+)", new_patch, re.MULTILINE).group(1) == str(old_start + 2)
  assert old_patch.split("\n---\n")[0] == new_patch.split("\n---\n")[0]
  # the project now builds exactly this tree, without offsets
  head_tree = project.git("rev-parse", "HEAD^{tree}").strip()
  assert "nothing to do" in project.ok("apply").stdout
  shutil.rmtree(project.tree)
  proc = project.ok("apply")
  assert "offset" not in proc.stdout and "differs" not in proc.stdout
  assert project.git("rev-parse", "HEAD^{tree}").strip() == head_tree


def test_conflict_is_reported_and_abort_restores(project, upstream):
  files, state = project.files(), project.tree_state()
  proc = start_conflict(project, upstream)
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
  message = lines[0]
  assert LR_PATCH in message and "modeling.py" in message
  conflict_line = re.search(r"modeling\.py \(conflict at line (\d+)\)", message)
  assert conflict_line, message
  text = (project.tree / "modeling.py").read_text().splitlines()
  assert text[int(conflict_line.group(1)) - 1].startswith("<<<<<<<")
  assert "--continue" in message and "--abort" in message
  assert project.files() == files

  cont = project.run("update", "--continue")
  assert "unresolved" in cont.stderr and cont.returncode != 0
  assert project.files() == files

  proc = project.ok("update", "--abort")
  assert "aborted" in proc.stdout
  assert project.tree_state() == state
  assert not (project.tree / STATE).exists()
  assert project.files() == files
  assert "nothing to do" in project.ok("apply").stdout


def test_continue_after_resolving_finishes(project, upstream):
  files = project.files()
  start_conflict(project, upstream)
  path = project.tree / "modeling.py"
  resolved = re.sub(r"<<<<<<<[^\n]*\n.*?=======\n(.*?)>>>>>>>[^\n]*\n", r"\1",
                    path.read_text(), flags=re.DOTALL)
  assert "<<<<<<<" not in resolved and "return 5e-5" in resolved
  path.write_text(resolved)
  project.git("add", "modeling.py")
  proc = project.ok("update", "--continue")
  assert report(proc) == {LR_PATCH: "refreshed", BATCH_PATCH: "unchanged"}, proc.stdout
  lock = project.read_lock()
  assert lock["upstream"]["commit"] == upstream.conflict
  assert lock["upstream"]["tree"] == upstream.tree_of(upstream.conflict)
  assert lock["converter"]["converted_tree"] == project.git("rev-parse", "HEAD~3^{tree}").strip()
  patch = (project.patches / LR_PATCH).read_text()
  assert "-  return 2e-4\n+  return 5e-5\n" in patch
  assert patch.startswith(f"Subject: {LR_SUBJECT}\nDescription: The larger rate diverges")
  assert project.files()[f"patches/{BATCH_PATCH}"] == files[f"patches/{BATCH_PATCH}"]
  assert not (project.tree / STATE).exists()
  assert project.git("status", "--porcelain") == ""
  assert "nothing to do" in project.ok("apply").stdout


def test_commands_refused_while_an_update_is_unfinished(project, upstream):
  start_conflict(project, upstream)
  files, state = project.files(), project.tree_state()
  for args in (["update", "--to", upstream.elsewhere], ["apply"], ["apply", "--force"],
               ["regenerate"]):
    message = project.fails(*args)
    assert "unfinished" in message and upstream.conflict[:12] in message, args
    assert "--continue" in message and "--abort" in message
    assert project.files() == files and project.tree_state() == state
  project.ok("update", "--abort")


def test_unknown_commit_changes_nothing(project):
  """An abbreviated hash; a full one upstream lacks, and a branch name, are test_bad_input.py's
  update-to-an-unknown-commit and update-to-a-branch-name."""
  target = "1234567"
  files, state = project.files(), project.tree_state()
  message = project.fails("update", "--to", target)
  assert target in message
  assert project.files() == files and project.tree_state() == state


def test_update_refuses_a_tree_with_work(project, upstream):
  edit(project.tree / "run.py", "Runs the tiny model.", "Runs it.")
  files, state = project.files(), project.tree_state()
  message = project.fails("update", "--to", upstream.elsewhere)
  assert "uncommitted run.py" in message and "regenerate" in message
  assert project.files() == files and project.tree_state() == state


def test_status_states(project, tmp_path):
  def status(*args):
    lines = project.ok("status", *args).stdout.splitlines()
    return lines, lines[-1]

  lines, last = status()
  assert lines[0].split() == ["patch", "files", "+", "-"]
  assert lines[1].split() == [LR_PATCH, "1", "1", "1"]
  assert lines[2].split() == [BATCH_PATCH, "1", "1", "1"]
  assert lines[3] == "overlay/: 1 files"
  assert last == f"tree {project.tree}: clean"

  _, last = status("--out", str(tmp_path / "none"))
  assert last.endswith("not built (run apply)")

  commit_files(project.tree, "Local tweak", {"README.md": "Tweaked.\n"})
  _, last = status()
  assert last.startswith(f"tree {project.tree}: ahead (commit ") and "Local tweak" in last
  assert "regenerate" in last

  (project.tree / "scratch.txt").write_text("x\n")
  _, last = status()
  assert last.startswith(f"tree {project.tree}: dirty (scratch.txt); also commit ")
  assert last.endswith(" Local tweak")

  project.ok("apply", "--force")
  _, last = status()
  assert last.endswith(": clean")
  edit(project.patches / "series", "# The patch series", "# The series")
  _, last = status()
  assert ": behind" in last and "run apply" in last
