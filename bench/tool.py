"""Part 1 of `python -m bench`: what tools/apply_patches.py costs, next to clone + tf_upgrade_v2.

Everything runs on a temporary copy of the project (tools/, upstream.lock, patches/, overlay/)
with a temporary cache, so the user's build/ and cache are never touched. The cache is left
filled for the caller (the benchmark builds the training tree from it).
"""
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from albert_patches import git

PROJECT = Path(__file__).resolve().parents[1]
COPIED = ("tools", "upstream.lock", "patches", "overlay")


def _lock_commit(root):
  text = (root / "upstream.lock").read_text(encoding="utf-8")
  return re.search(r'^commit\s*=\s*"([0-9a-f]{40})"', text, re.MULTILINE).group(1)


def copy_project(dest):
  dest.mkdir(parents=True)
  for name in COPIED:
    src = PROJECT / name
    if src.is_dir():
      shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    elif src.is_file():
      shutil.copy2(src, dest / name)
  return dest


def stages(output):
  """Seconds per stage from the tool's progress lines (`convert        5.1s  ...`)."""
  found = {}
  for line in output.splitlines():
    match = re.match(r"^(\w+)\s+([0-9.]+)s\b", line)
    if match:
      found[match.group(1)] = found.get(match.group(1), 0.0) + float(match.group(2))
  return found


def _timed(cmd, env, cwd, log, outputs=None):
  start = time.perf_counter()
  proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
  elapsed = time.perf_counter() - start
  log.write(f"$ {' '.join(map(str, cmd))}\n[{elapsed:.3f} s, rc {proc.returncode}]\n"
            f"{proc.stdout}{proc.stderr}\n")
  log.flush()
  if outputs is not None:
    outputs.append(proc.stdout + proc.stderr)
  if proc.returncode != 0:
    tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
    raise RuntimeError(f"{' '.join(map(str, cmd[1:3]))} failed (rc {proc.returncode}): "
                       f"{tail[0] if tail else ''}")
  return elapsed


def edit_one_patch(copy, round_no):
  """Edits one patch's header Description (the last patch in the series) in the copy.

  Returns what was edited. With an empty series there is no patch to edit; then a comment
  is added to an overlay file instead (the apply is just as full: every input is hashed).
  """
  series = copy / "patches" / "series"
  names = [line.split("#", 1)[0].strip() for line in series.read_text(encoding="utf-8")
           .splitlines()] if series.is_file() else []
  names = [n for n in names if n]
  mark = f"(benchmark edit {round_no})"
  if names:
    path = copy / "patches" / names[-1]
    text = path.read_text(encoding="utf-8")
    head, sep, diff = text.partition("\n---\n")
    if re.search(r"^Description:", head, re.MULTILINE):
      head = re.sub(r"^(Description:.*)$", lambda m: f"{m.group(1)} {mark}", head, count=1,
                    flags=re.MULTILINE)
    else:
      head = head + f"\nDescription: {mark}"
    path.write_text(head + sep + diff, encoding="utf-8")
    return f"patches/{names[-1]}: header Description"
  overlay = sorted(p for p in (copy / "overlay").rglob("*.py"))
  if not overlay:
    raise RuntimeError("no patch and no overlay file to edit")
  with open(overlay[0], "a", encoding="utf-8") as f:
    f.write(f"# {mark}\n")
  return f"overlay/{overlay[0].relative_to(copy / 'overlay')} (series is empty: no patch to edit)"


def run(python, bundle, work, repeats=3, log=None):
  """Times the tool; returns (figures, notes, cache_dir). work: an empty temporary folder."""
  work = Path(work)
  log = log or open(os.devnull, "w", encoding="utf-8")
  copy = copy_project(work / "project")
  cache = work / "cache"
  out = work / "out" / "albert"
  env = dict(os.environ, ALBERT_PATCHES_CACHE=str(cache), ALBERT_UPSTREAM=str(bundle))
  tool = [str(python), str(copy / "tools" / "apply_patches.py")]
  figures, notes, samples = {}, [], {}

  cold_output = []
  samples["cold_apply_s"] = [_timed(tool + ["apply", "--out", str(out)], env, copy, log,
                                    cold_output)]
  figures["cold_apply_stages_s"] = stages(cold_output[0])
  warm = []
  edited = None
  for i in range(repeats):
    edited = edit_one_patch(copy, i + 1)
    warm.append(_timed(tool + ["apply", "--out", str(out)], env, copy, log))
  samples["warm_apply_s"] = warm
  notes.append(f"warm apply: after an edit of {edited}")
  samples["noop_apply_s"] = [_timed(tool + ["apply", "--out", str(out)], env, copy, log)
                             for _ in range(max(repeats, 5))]
  samples["noop_regenerate_s"] = [_timed(tool + ["regenerate", "--out", str(out)], env, copy,
                                         log) for _ in range(repeats)]
  samples["check_s"] = [_timed(tool + ["check"], env, copy, log) for _ in range(1)]

  # The floor: what any build of this tree has to do at least, without the tool.
  commit = _lock_commit(copy)
  floor = []
  git.run(["--version"])  # loads GitPython before the clock runs, as a user's shell has git
  for i in range(2):
    dest = work / f"floor-{i}"
    start = time.perf_counter()
    try:
      git.run(["clone", "-q", "--no-checkout", str(bundle), str(dest)])
      git.run(["checkout", "-q", commit], cwd=dest)
    except git.GitError as e:
      raise RuntimeError(f"git clone of the bundle failed: {e}") from None
    clone_s = time.perf_counter() - start
    upgrade = subprocess.run(
        [str(python), "-m", "tensorflow.tools.compatibility.tf_upgrade_v2_main", "--intree",
         str(dest), "--inplace", "--reportfile", str(work / f"floor-report-{i}.txt")],
        capture_output=True, text=True, cwd=dest)
    total = time.perf_counter() - start
    log.write(f"floor {i}: clone+checkout {clone_s:.3f} s, total {total:.3f} s, "
              f"tf_upgrade_v2 rc {upgrade.returncode}\n")
    if upgrade.returncode != 0:
      raise RuntimeError("tf_upgrade_v2 failed on the clone: "
                         f"{(upgrade.stderr.strip().splitlines() or [''])[-1]}")
    floor.append(total)
    samples.setdefault("floor_clone_s", []).append(clone_s)
    shutil.rmtree(dest, ignore_errors=True)
  samples["floor_s"] = floor

  for key, values in samples.items():
    figures[key] = statistics.median(values)
  base = figures["floor_s"]
  for key in ("cold_apply", "warm_apply", "noop_apply", "noop_regenerate", "check"):
    figures[f"{key}_over_floor"] = figures[f"{key}_s"] / base
  figures["tool_samples"] = samples
  cold = figures["cold_apply_stages_s"]
  if cold:
    notes.append("apply from an empty cache, by stage: " + ", ".join(
        f"{k} {v:.1f} s" for k, v in cold.items()))
  notes.append(f"floor = git clone --no-checkout of the bundle + checkout {commit[:12]} + "
               f"tf_upgrade_v2 --inplace on it, with {python}")
  return figures, notes, cache
