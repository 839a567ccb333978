"""Writes a recipe's results.md and results.json from what the scripts wrote.

  python recipe_results.py OUTPUT_DIR TASK...
  python recipe_results.py OUTPUT_DIR TASK -- COMMAND...

Each TASK's files are in OUTPUT_DIR/TASK, the --output_dir of its script: a
GLUE task (MRPC, STS-B, ...: run_classifier.py), squad_v1, squad_v2 or race.
A row per task gives the metric the script picks its best checkpoint by, the
step of that checkpoint, every other metric evaluated there, and the wall time
in OUTPUT_DIR/TASK/wall_time_s (run_glue.sh writes it). With `-- COMMAND`, the
command is run first and its wall time written there; if it fails, its exit
status is returned and nothing is written.
"""
import json
import os
import re
import subprocess
import sys
import time

# run_classifier.py's tasks, and the metric it keeps the best checkpoint by.
GLUE_TASKS = ("cola", "mnli", "mismnli", "mrpc", "rte", "sst-2", "sts-b", "qqp",
              "qnli", "wnli")
GLUE_KEYS = {"sts-b": "pearson", "cola": "matthew_corr"}
SEPARATOR = "=" * 50


class ResultsError(Exception):
  """What is missing or malformed, and what would write it."""


def read_text(path, writer):
  if not os.path.isfile(path):
    raise ResultsError("no %s: %s writes it" % (path, writer))
  with open(path, encoding="utf-8") as f:
    return f.read()


def numbers(text):
  """{key: float} of the `key = number` lines of TEXT (arrays are left out)."""
  found = {}
  for line in text.splitlines():
    match = re.match(r"^(\w+) = (-?[\d.]+(?:[eE][-+]?\d+)?|-?nan|-?inf)$",
                     line.strip())
    if match:
      found[match.group(1)] = float(match.group(2))
  return found


def blocks(text):
  """The evaluations of an eval_results.txt, each {key: float}, in order."""
  return [numbers(block) for block in text.split(SEPARATOR) if numbers(block)]


def glue_row(task_dir, task):
  """run_classifier.py: best_trial.txt names the best step; eval_results.txt
  has a block of metrics per evaluated checkpoint."""
  writer = "run_classifier.py --do_eval"
  best = read_text(os.path.join(task_dir, "best_trial.txt"), writer)
  try:
    _, best_step, _ = best.strip().split(":")
    best_step = int(best_step)
  except ValueError:
    raise ResultsError("%s/best_trial.txt is %r, not STEP:BEST_STEP:VALUE"
                       % (task_dir, best)) from None
  text = read_text(os.path.join(task_dir, "eval_results.txt"), writer)
  found = [b for b in blocks(text) if b.get("global_step") == best_step]
  if not found:
    raise ResultsError("%s/eval_results.txt has no evaluation of step %d"
                       % (task_dir, best_step))
  metrics = {k: v for k, v in found[-1].items()
             if k not in ("best", "global_step")}
  return GLUE_KEYS.get(task.lower(), "eval_accuracy"), best_step, metrics


def squad_step_and_final(task_dir, script):
  """run_squad_v*.py end eval_results.txt with the best checkpoint's metrics
  and `best perf happened at step: N`."""
  text = read_text(os.path.join(task_dir, "eval_results.txt"),
                   script + " --do_predict")
  final = text.split(SEPARATOR)[-1]
  match = re.search(r"best perf happened at step: (\d+)", final)
  if not match:
    raise ResultsError("%s/eval_results.txt does not end with the best step: "
                       "did %s finish?" % (task_dir, script))
  return int(match.group(1)), numbers(final)


def squad_v1_row(task_dir, _):
  step, final = squad_step_and_final(task_dir, "run_squad_v1.py")
  return "f1", step, {k: final[k] for k in ("exact_match", "f1") if k in final}


def squad_v2_row(task_dir, _):
  """SQuAD 2.0's own scores of the best checkpoint (squad_v2_eval.json)."""
  step, _ = squad_step_and_final(task_dir, "run_squad_v2.py")
  scores = json.loads(read_text(os.path.join(task_dir, "squad_v2_eval.json"),
                                "run_squad_v2.py --do_predict"))
  return "f1", step, {k: float(v) for k, v in scores.items()
                      if isinstance(v, (int, float))}


def race_row(task_dir, _):
  """run_race.py keeps the first checkpoint of the highest eval_accuracy."""
  text = read_text(os.path.join(task_dir, "eval_results.txt"),
                   "run_race.py --do_eval")
  evaluations = [b for b in blocks(text) if "eval_accuracy" in b]
  if not evaluations:
    raise ResultsError("%s/eval_results.txt has no evaluation" % task_dir)
  best = max(evaluations, key=lambda b: b["eval_accuracy"])
  metrics = {k: v for k, v in best.items()
             if k not in ("best", "global_step")}
  return "eval_accuracy", int(best["global_step"]), metrics


READERS = {"squad_v1": (squad_v1_row, "run_squad_v1.py"),
           "squad_v2": (squad_v2_row, "run_squad_v2.py"),
           "race": (race_row, "run_race.py")}


def reader(task):
  if task.lower() in GLUE_TASKS:
    return glue_row, "run_classifier.py"
  if task in READERS:
    return READERS[task]
  raise ResultsError("unknown task %r: a GLUE task (%s), %s" % (
      task, ", ".join(GLUE_TASKS), ", ".join(READERS)))


def row(output_dir, task):
  read, script = reader(task)
  task_dir = os.path.join(output_dir, task)
  metric, step, metrics = read(task_dir, task)
  if metric not in metrics:
    raise ResultsError("%s: no %s in what %s wrote" % (task_dir, metric, script))
  wall_time = None
  path = os.path.join(task_dir, "wall_time_s")
  if os.path.isfile(path):
    wall_time = float(read_text(path, "run_glue.sh"))
  return {"task": task, "script": script, "metric": metric,
          "value": metrics[metric], "best_step": step, "wall_time_s": wall_time,
          "metrics": metrics}


def markdown(rows):
  lines = ["| task | metric | value | best step | wall time | other metrics |",
           "| --- | --- | --- | --- | --- | --- |"]
  for r in rows:
    others = ", ".join("%s %.4g" % (k, v) for k, v in sorted(r["metrics"].items())
                       if k != r["metric"])
    wall = "-" if r["wall_time_s"] is None else "%.0f s" % r["wall_time_s"]
    lines.append("| %s | %s | %.4f | %d | %s | %s |" % (
        r["task"], r["metric"], r["value"], r["best_step"], wall, others))
  return "\n".join(lines) + "\n"


def replace(path, text):
  """Writes PATH whole or not at all."""
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(path + ".tmp", path)


def write_results(output_dir, tasks):
  """OUTPUT_DIR/results.md and results.json for TASKS; the rows."""
  rows = [row(output_dir, task) for task in tasks]
  replace(os.path.join(output_dir, "results.json"),
          json.dumps({"tasks": rows}, indent=2) + "\n")
  replace(os.path.join(output_dir, "results.md"), markdown(rows))
  return rows


def run_timed(output_dir, task, command):
  """Runs COMMAND; writes its wall time to OUTPUT_DIR/TASK/wall_time_s."""
  start = time.monotonic()
  status = subprocess.call(command)
  if status == 0:
    os.makedirs(os.path.join(output_dir, task), exist_ok=True)
    replace(os.path.join(output_dir, task, "wall_time_s"),
            "%.1f\n" % (time.monotonic() - start))
  return status


def main(argv):
  command = []
  if "--" in argv:
    at = argv.index("--")
    argv, command = argv[:at], argv[at + 1:]
  if len(argv) < 2 or argv[0].startswith("-") or (command and len(argv) != 2):
    print("usage: recipe_results.py OUTPUT_DIR TASK... | OUTPUT_DIR TASK -- "
          "COMMAND...", file=sys.stderr)
    return 2
  output_dir, tasks = argv[0], argv[1:]
  try:
    for task in tasks:
      reader(task)
    if command:
      status = run_timed(output_dir, tasks[0], command)
      if status:
        return status
    write_results(output_dir, tasks)
  except ResultsError as e:
    print("error: %s" % e, file=sys.stderr)
    return 2
  print("results: %s" % os.path.join(output_dir, "results.md"))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
