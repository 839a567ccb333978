#!/usr/bin/env python3
"""`make bench`: what the tool costs, and how fast the patched ALBERT trains next to its peer.

Prints one table and writes bench/results.json. A benchmark prints figures: it fails only
when something cannot run, never on a number. The parts:

  1. the tool (tools/apply_patches.py) on a temporary copy of the project, next to the floor:
     git clone of the pinned commit + tf_upgrade_v2 on it        (tools/bench_tool.py)
  2. training throughput of the patched run_pretraining.py on this CPU, ALBERT-base shapes,
     1 process and horovodrun -np 2                               (tools/bench_train.py)
  3. the peer: HuggingFace transformers AlbertForPreTraining on PyTorch, same shapes, in a
     venv of its own (build/bench-venv)                           (tools/bench_peer.py)
  4. model FLOPs x examples/s over a matmul peak measured here    (tools/bench_flops.py)
  5. GPU: not measured here (no GPU on this machine).

Run it with the project's venv: `.venv/bin/python tools/bench.py` (what `make bench` does).
`--quick` makes a short smoke run (tiny batch, 1 timed step) whose numbers mean nothing.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_flops  # noqa: E402
import bench_tool  # noqa: E402
from albert_patches.fetch import SHARED_BUNDLE as BUNDLE  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
TOOLS = PROJECT / "tools"
PEER_TORCH = "torch==2.13.0"
PEER_PACKAGES = [PEER_TORCH, "transformers"]


def log(msg):
  print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg():
  try:
    return round(os.getloadavg()[0], 2)
  except OSError:
    return None


def machine():
  info = {"python": platform.python_version(), "platform": platform.platform(),
          "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      cpuinfo = f.read()
    for line in cpuinfo.splitlines():
      if line.startswith("model name"):
        info["cpu"] = line.split(":", 1)[1].strip()
        break
    flags = next((l for l in cpuinfo.splitlines() if l.startswith("flags")), "")
    info["cpu_flags"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile",
                                     "avx512_vnni") if f" {f}" in flags]
  except OSError:
    pass
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      info["mem_gib"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
  except (OSError, ValueError, IndexError):
    pass
  try:
    import importlib.metadata as md
    info["tensorflow"] = md.version("tensorflow")
    info["horovod"] = md.version("horovod")
  except Exception:  # pylint: disable=broad-except
    pass
  return info


def run_logged(cmd, env, logfile, timeout, cwd=None, usage=None):
  """Runs cmd with output to logfile; returns (rc, seconds).

  usage: a dict that gets the CPU seconds (user + system) the command and its children used.
  """
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  with open(logfile, "a", encoding="utf-8") as out:
    out.write(f"$ {' '.join(map(str, cmd))}\n")
    out.flush()
    try:
      proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                            timeout=timeout, start_new_session=True)
      rc = proc.returncode
    except subprocess.TimeoutExpired:
      rc = "timeout"
  elapsed = time.perf_counter() - start
  if usage is not None:
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    usage["cpu_per_wall"] = usage["cpu_s"] / elapsed if elapsed > 0 else None
  return rc, elapsed


def tail(path, lines=3):
  try:
    return " | ".join(Path(path).read_text(encoding="utf-8", errors="replace")
                      .strip().splitlines()[-lines:])
  except OSError:
    return ""


# ---------------------------------------------------------------------------------- the tree

def build_tree(args, cache, logfile):
  """The tree to train: $ALBERT_TREE, else the project's series applied into build/bench/albert."""
  if args.tree:
    return Path(args.tree).resolve(), f"given ({args.tree})"
  out = PROJECT / "build" / "bench" / "albert"
  env = dict(os.environ)
  # The tool part's temporary cache when it ran, else one of the benchmark's own: the
  # user's cache is never touched.
  env["ALBERT_PATCHES_CACHE"] = str(cache or PROJECT / "build" / "bench" / "cache")
  if "ALBERT_UPSTREAM" not in env and BUNDLE.exists():
    env["ALBERT_UPSTREAM"] = str(BUNDLE)
  rc, secs = run_logged([sys.executable, str(TOOLS / "apply_patches.py"), "apply", "--force",
                         "--out", str(out)], env, logfile, timeout=900)
  if rc != 0:
    raise SystemExit(f"bench: apply into {out} failed ({rc}): {tail(logfile)}")
  return out, f"built by apply into {out.relative_to(PROJECT)} in {secs:.1f} s"


def tree_features(tree):
  text = (tree / "run_pretraining.py").read_text(encoding="utf-8")
  return {"use_horovod_flag": '"use_horovod"' in text,
          "perf_hook_in_script": "PerfLoggingHook" in text,
          "training_hooks": (tree / "training_hooks.py").is_file(),
          "use_einsum_flag": '"use_einsum"' in text}


# ------------------------------------------------------------------------------ measurements

def tf_env(threads_intra, threads_inter, extra):
  env = dict(os.environ)
  env.update({"TF_NUM_INTRAOP_THREADS": str(threads_intra),
              "TF_NUM_INTEROP_THREADS": str(threads_inter),
              "OMP_NUM_THREADS": str(threads_intra), "TF_CPP_MIN_LOG_LEVEL": "1",
              "PYTHONDONTWRITEBYTECODE": "1"})
  env.update(extra)
  return env


def matmul_peak(work, threads, args, logfile):
  path = work / f"peak-{threads}.json"
  rc, _ = run_logged([sys.executable, str(TOOLS / "bench_train.py"), "peak", "--json",
                      str(path), "--n", str(args.peak_n), "--reps", str(args.peak_reps)],
                     tf_env(threads, 1, {}), logfile, timeout=300)
  if rc != 0:
    return None
  return json.loads(path.read_text(encoding="utf-8"))


def albert_flags(args, data_glob, config, output_dir, steps):
  flags = [f"--input_file={data_glob}", f"--output_dir={output_dir}",
           f"--albert_config_file={config}", "--do_train", f"--train_batch_size={args.batch}",
           f"--max_seq_length={args.seq}", f"--max_predictions_per_seq={args.preds}",
           f"--num_train_steps={steps}", "--num_warmup_steps=0", "--learning_rate=1e-4",
           "--save_checkpoints_steps=1000000", f"--optimizer={args.optimizer}"]
  if args.use_einsum is not None:
    flags.append(f"--use_einsum={str(args.use_einsum).lower()}")
  return flags + list(args.tf_flag)


def timeout(args):
  """A run's time limit: --run-timeout, cut so that the whole benchmark keeps to --budget."""
  left = args.deadline - time.time()
  return max(30, min(args.run_timeout, left))


def cores_used(record, warmup):
  """CPU seconds over wall seconds of the timed steps: the cores the run actually got."""
  cpu = (record.get("cpu_s") or [])[warmup:]
  wall = record["durations_s"][warmup:]
  return sum(cpu) / sum(wall) if cpu and len(cpu) == len(wall) and sum(wall) > 0 else None


def per_cpu_second(record, examples_per_step, warmup):
  """Examples per CPU-second of the timed steps: less sensitive to other load than examples/s."""
  cpu = (record.get("cpu_s") or [])[warmup:]
  return examples_per_step * len(cpu) / sum(cpu) if cpu and sum(cpu) > 0 else None


def rate(durations, examples_per_step, warmup):
  timed = durations[warmup:]
  if not timed:
    return None, []
  return examples_per_step * len(timed) / sum(timed), timed


def train_tf(name, work, data_glob, config, args, nproc, threads, logfile):
  """One training run of run_pretraining.py; returns a dict of what it measured."""
  out = work / f"train-{name}"
  shutil.rmtree(out, ignore_errors=True)
  json_base = work / f"perf-{name}.json"
  for old in work.glob(f"perf-{name}.json.rank*"):
    old.unlink()
  steps = args.warmup + args.timed
  extra = dict(kv.split("=", 1) for kv in args.tf_env)
  env = tf_env(threads, args.inter_threads or threads, extra)
  runner = [sys.executable, str(TOOLS / "bench_train.py"), "run", "--tree", str(args.tree_path),
            "--json", str(json_base), "--"]
  if nproc == 1:
    cmd = runner + albert_flags(args, data_glob, config, out, steps)
  else:
    # run_pretraining.py divides --num_train_steps by the number of workers.
    horovodrun = Path(sys.executable).parent / "horovodrun"
    cmd = [str(horovodrun), "-np", str(nproc), "-H", f"localhost:{nproc}", "--gloo"] + runner \
        + albert_flags(args, data_glob, config, out, steps * nproc) + ["--use_horovod"]
  load_before = loadavg()
  usage = {}
  rc, secs = run_logged(cmd, env, logfile, timeout=timeout(args), usage=usage)
  result = {"command": " ".join(cmd), "rc": rc, "wall_s": secs, "processes": nproc, **usage,
            "intra_op_threads_per_process": threads,
            "inter_op_threads_per_process": args.inter_threads or threads,
            "env": {k: env[k] for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                        "OMP_NUM_THREADS")} | extra,
            "loadavg_before": load_before, "loadavg_after": loadavg()}
  records = []
  for path in sorted(work.glob(f"perf-{name}.json.rank*")):
    records += [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l]
  if rc != 0 or len(records) < nproc:
    result["error"] = f"run failed ({rc}); see {logfile}: {tail(logfile)}"
    return result
  per_rank = []
  for record in records:
    r, timed = rate(record["durations_s"], record["examples_per_step"], args.warmup)
    per_rank.append({"rank": record.get("rank"), "examples_per_s": r, "timed_steps": len(timed),
                     "step_s": statistics.median(timed) if timed else None,
                     "durations_s": record["durations_s"], "hook": record.get("hook"),
                     "cores_used": cores_used(record, args.warmup),
                     "examples_per_cpu_s": per_cpu_second(record, record["examples_per_step"],
                                                          args.warmup),
                     "max_rss_mib": record.get("max_rss_mib"),
                     "examples_per_step": record["examples_per_step"]})
  result["per_rank"] = per_rank
  result["hook"] = per_rank[0]["hook"]
  if any(p["examples_per_s"] is None for p in per_rank):
    result["error"] = "no timed steps after warm-up"
    return result
  result["examples_per_s"] = sum(p["examples_per_s"] for p in per_rank)
  result["step_s"] = max(p["step_s"] for p in per_rank)
  result["timed_steps"] = min(p["timed_steps"] for p in per_rank)
  used = [p["cores_used"] for p in per_rank]
  result["cores_used"] = sum(used) if None not in used else None
  cpu_rates = [p["examples_per_cpu_s"] for p in per_rank]
  # All processes' examples over all their CPU seconds (the ranks run in lockstep).
  result["examples_per_cpu_s"] = (len(cpu_rates) / sum(1 / r for r in cpu_rates)
                                  if None not in cpu_rates else None)
  return result


def peer_python():
  return PROJECT / "build" / "bench-venv" / "bin" / "python"


def ensure_peer(logfile):
  """build/bench-venv with torch (CPU) and transformers; checked with a one-step self-test."""
  venv = PROJECT / "build" / "bench-venv"
  python = peer_python()
  stamp = venv / ".bench-ok"
  if stamp.exists() and python.exists():
    return python, stamp.read_text(encoding="utf-8").strip()
  if not python.exists():
    py311 = shutil.which("python3.11") or "python3.11"
    rc, _ = run_logged([py311, "-m", "venv", str(venv)], dict(os.environ), logfile, 300)
    if rc != 0:
      raise RuntimeError(f"cannot create {venv} with python3.11: {tail(logfile)}")
  rc, _ = run_logged([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES],
                     dict(os.environ), logfile, 900)
  if rc != 0:
    raise RuntimeError(f"pip install {' '.join(PEER_PACKAGES)} failed: {tail(logfile)}")
  check = subprocess.run([str(python), str(TOOLS / "bench_peer.py"), "--selftest", "--steps",
                          "1"], capture_output=True, text=True, timeout=300)
  if check.returncode != 0:
    # A transformers release newer than this torch supports: say so, with the versions.
    raise RuntimeError("the peer venv's transformers does not work with its torch: "
                       f"{(check.stderr.strip().splitlines() or [''])[-1]}")
  versions = json.loads(check.stdout.strip().splitlines()[-1])
  text = f"torch {versions['torch']}, transformers {versions['transformers']}"
  stamp.write_text(text + "\n", encoding="utf-8")
  return python, text


def train_peer(work, args, threads, logfile):
  path = work / "peer.json"
  if path.exists():
    path.unlink()
  python, versions = ensure_peer(logfile)
  env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
             TRANSFORMERS_OFFLINE="1", HF_HUB_OFFLINE="1")
  cmd = [str(python), str(TOOLS / "bench_peer.py"), "--json", str(path), "--batch",
         str(args.batch), "--seq", str(args.seq), "--preds", str(args.preds), "--steps",
         str(args.warmup + args.timed), "--threads", str(threads)]
  load_before = loadavg()
  usage = {}
  rc, secs = run_logged(cmd, env, logfile, timeout=timeout(args), usage=usage)
  result = {"command": " ".join(cmd), "rc": rc, "wall_s": secs, "versions": versions, **usage,
            "threads": threads, "loadavg_before": load_before, "loadavg_after": loadavg()}
  if rc != 0 or not path.exists():
    result["error"] = f"peer failed ({rc}); see {logfile}: {tail(logfile)}"
    return result
  record = json.loads(path.read_text(encoding="utf-8"))
  r, timed = rate(record["durations_s"], args.batch, args.warmup)
  result.update({"examples_per_s": r, "step_s": statistics.median(timed) if timed else None,
                 "timed_steps": len(timed), "durations_s": record["durations_s"],
                 "cores_used": cores_used(record, args.warmup),
                 "max_rss_mib": record.get("max_rss_mib"), "parameters": record["parameters"],
                 "interop_threads": record.get("interop_threads")})
  return result


# ----------------------------------------------------------------------------------- report

UNITS = {
    "cold_apply_s": "s", "warm_apply_s": "s", "noop_apply_s": "s", "noop_regenerate_s": "s",
    "check_s": "s", "floor_s": "s", "floor_clone_s": "s",
    "cold_apply_over_floor": "ratio", "warm_apply_over_floor": "ratio",
    "noop_apply_over_floor": "ratio", "noop_regenerate_over_floor": "ratio",
    "check_over_floor": "ratio",
    "tf_1proc_examples_per_s": "examples/s", "tf_hvd2_examples_per_s": "examples/s",
    "peer_examples_per_s": "examples/s", "examples_per_s_ratio_vs_peer": "ratio",
    "hvd2_examples_per_s_ratio_vs_peer": "ratio", "hvd2_over_1proc": "ratio",
    "tf_1proc_step_s": "s", "tf_hvd2_step_s": "s", "peer_step_s": "s",
    "model_gflop_per_example": "GFLOP", "matmul_peak_gflop_per_s": "GFLOP/s",
    "matmul_peak_1thread_gflop_per_s": "GFLOP/s",
    "tf_1proc_utilisation_pct": "%", "tf_hvd2_utilisation_pct": "%", "peer_utilisation_pct": "%",
    "gpu_examples_per_s": "examples/s",
    "tf_1proc_examples_per_cpu_s": "examples/CPU-s", "tf_hvd2_examples_per_cpu_s":
    "examples/CPU-s", "peer_examples_per_cpu_s": "examples/CPU-s",
    "examples_per_cpu_s_ratio_vs_peer": "ratio",
    "tf_1proc_utilisation_of_cores_got_pct": "%", "tf_hvd2_utilisation_of_cores_got_pct": "%",
    "peer_utilisation_of_cores_got_pct": "%",
    "tf_1proc_cores_used": "cores", "tf_hvd2_cores_used": "cores", "peer_cores_used": "cores",
}


def fmt(value, unit=""):
  if value is None:
    return "n/a"
  if isinstance(value, str):
    return value
  if unit == "%":
    return f"{value:.1f} %"
  if abs(value) >= 100:
    return f"{value:.0f} {unit}".strip()
  if abs(value) >= 10:
    return f"{value:.1f} {unit}".strip()
  return f"{value:.3g} {unit}".strip()


def table(results):
  """The results as one markdown table: part, figure, value, note."""
  f = results
  meta = f.get("meta", {})
  runs = meta.get("runs", {})
  rows = []

  def value(key):
    unit = UNITS.get(key, "")
    return fmt(f.get(key), "" if unit == "ratio" else unit)

  def over(key):
    return f"{fmt(f.get(key))} x floor" if f.get(key) is not None else ""

  def how(name):
    r = runs.get(name) or {}
    if r.get("error"):
      return r["error"][:90]
    if "threads" in r:
      text = f"1 proc x {r['threads']} threads"
    elif "processes" in r:
      text = (f"{r['processes']} proc x {r['intra_op_threads_per_process']} intra / "
              f"{r['inter_op_threads_per_process']} inter-op threads")
    else:
      return ""
    if r.get("cores_used") is not None:
      text += f"; got {r['cores_used']:.2f} cores"
    if r.get("examples_per_cpu_s") is not None:
      text += f"; {r['examples_per_cpu_s']:.3g} examples/CPU-s"
    return text

  rows += [
      ("1 tool", "apply, empty cache", value("cold_apply_s"), over("cold_apply_over_floor")),
      ("1 tool", "apply, warm cache, one patch edited", value("warm_apply_s"),
       over("warm_apply_over_floor") + " (target <= 1.2)"),
      ("1 tool", "apply, nothing changed", value("noop_apply_s"),
       over("noop_apply_over_floor") + " (target < 0.3 s)"),
      ("1 tool", "regenerate, nothing changed", value("noop_regenerate_s"),
       over("noop_regenerate_over_floor")),
      ("1 tool", "check", value("check_s"), over("check_over_floor")),
      ("1 tool", "floor: git clone + tf_upgrade_v2", value("floor_s"), ""),
      ("2 train", "patched ALBERT, 1 process", value("tf_1proc_examples_per_s"),
       how("tf_1proc")),
      ("2 train", "patched ALBERT, horovodrun -np 2", value("tf_hvd2_examples_per_s"),
       how("tf_hvd2") + (f"; {fmt(f.get('hvd2_over_1proc'))} x 1 process"
                         if f.get("hvd2_over_1proc") else "")),
      ("3 peer", "HF AlbertForPreTraining (PyTorch)", value("peer_examples_per_s"), how("peer")),
      ("3 peer", "ours (1 process) / peer", value("examples_per_s_ratio_vs_peer"),
       "target >= 1.0; per CPU-second: "
       f"{fmt(f.get('examples_per_cpu_s_ratio_vs_peer'))}"),
      ("3 peer", "ours (horovodrun -np 2) / peer", value("hvd2_examples_per_s_ratio_vs_peer"),
       ""),
      ("4 limit", "model FLOPs per example", value("model_gflop_per_example"),
       "3 x forward; per-layer compute x layers"),
      ("4 limit", "TF matmul peak", value("matmul_peak_gflop_per_s"),
       f"{meta.get('threads')} threads; 1 thread: "
       f"{fmt(f.get('matmul_peak_1thread_gflop_per_s'), 'GFLOP/s')}"),
      ("4 limit", "utilisation, ours 1 process", value("tf_1proc_utilisation_pct"),
       "of the cores it got: " + value("tf_1proc_utilisation_of_cores_got_pct")),
      ("4 limit", "utilisation, ours horovodrun -np 2", value("tf_hvd2_utilisation_pct"),
       "of the cores it got: " + value("tf_hvd2_utilisation_of_cores_got_pct")),
      ("4 limit", "utilisation, peer", value("peer_utilisation_pct"),
       "of the cores it got: " + value("peer_utilisation_of_cores_got_pct")),
      ("5 GPU", "GPU throughput", "n/a", "no GPU in this session: not measured"),
  ]
  header = ("part", "figure", "value", "note")
  widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
  lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
  for r in rows:
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
  return "\n".join(lines)


# ------------------------------------------------------------------------------------- main

def parse(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=8, help="examples per step and process")
  p.add_argument("--seq", type=int, default=128)
  p.add_argument("--preds", type=int, default=20, help="max_predictions_per_seq")
  p.add_argument("--warmup", type=int, default=2, help="steps left out of the timing")
  p.add_argument("--timed", type=int, default=10, help="timed steps after the warm-up")
  p.add_argument("--threads", type=int, default=os.cpu_count(),
                 help="threads of the 1-process runs (TF intra-op, torch); the -np 2 run "
                      "gives each process threads/2")
  p.add_argument("--inter-threads", type=int, default=None,
                 help="TF inter-op threads per process (default: as intra-op)")
  p.add_argument("--optimizer", default="adamw", choices=["adamw", "lamb"])
  p.add_argument("--use-einsum", type=lambda s: s.lower() in ("1", "true", "yes"),
                 default=None, help="pass --use_einsum=... to run_pretraining.py")
  p.add_argument("--tf-env", action="append", default=[], metavar="K=V",
                 help="extra environment for the TF runs (e.g. TF_XLA_FLAGS=...)")
  p.add_argument("--tf-flag", action="append", default=[], metavar="--FLAG=V",
                 help="extra run_pretraining.py flag")
  p.add_argument("--tree", default=os.environ.get("ALBERT_TREE"),
                 help="train this tree instead of building build/bench/albert "
                      "(default: $ALBERT_TREE)")
  p.add_argument("--skip", action="append", default=[],
                 choices=["tool", "tf1", "hvd", "peer", "peak"])
  p.add_argument("--repeats", type=int, default=3, help="repeats of the cheap tool timings")
  p.add_argument("--peak-n", type=int, default=2048)
  p.add_argument("--peak-reps", type=int, default=8)
  p.add_argument("--run-timeout", type=int, default=420, help="limit of one training run (s)")
  p.add_argument("--budget", type=int, default=840,
                 help="seconds the whole benchmark may take; a training run that would start "
                      "with less than a minute left is skipped, with a note")
  p.add_argument("--examples", type=int, default=512, help="synthetic examples written")
  p.add_argument("--json", default=str(PROJECT / "bench" / "results.json"))
  p.add_argument("--quick", action="store_true",
                 help="smoke run: batch 2, 1 warm-up + 1 timed step, 1 repeat; numbers "
                      "mean nothing")
  args = p.parse_args(argv)
  if args.quick:
    args.batch, args.warmup, args.timed, args.repeats = 2, 1, 1, 1
    args.peak_n, args.peak_reps, args.examples = 512, 2, 32
  return args


def main(argv=None):
  args = parse(argv)
  started = time.time()
  args.deadline = started + args.budget
  work = PROJECT / "build" / "bench" / "work"
  shutil.rmtree(work, ignore_errors=True)
  work.mkdir(parents=True)
  logfile = work / "bench.log"
  results = {}
  notes = []
  meta = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
          "machine": machine(), "batch_per_process": args.batch, "seq": args.seq,
          "max_predictions_per_seq": args.preds, "warmup_steps": args.warmup,
          "timed_steps": args.timed, "threads": args.threads, "optimizer": args.optimizer,
          "quick": args.quick, "log": str(logfile), "runs": {}}
  log(f"log: {logfile}; load average at start {meta['machine']['loadavg_at_start']}")
  if "peer" not in args.skip:
    # Installing the peer (first run only) does not count against --budget.
    setup = time.time()
    try:
      meta["peer_venv"] = ensure_peer(logfile)[1]
    except (RuntimeError, subprocess.TimeoutExpired) as e:
      meta["peer_venv"] = f"error: {e}"
      log(f"peer venv: {e}")
    meta["peer_venv_setup_s"] = round(time.time() - setup, 1)
    args.deadline += time.time() - setup

  # 1. the tool
  cache = None
  tmp = Path(tempfile.mkdtemp(prefix="albert-bench-"))
  try:
    bundle = Path(os.environ.get("ALBERT_UPSTREAM") or BUNDLE)
    if "tool" not in args.skip and not bundle.exists():
      notes.append(f"tool timings skipped: no upstream bundle at {bundle} (set ALBERT_UPSTREAM "
                   "to a local clone or bundle of upstream ALBERT)")
      args.skip.append("tool")
    if "tool" not in args.skip:
      log("1/5 tool timings (temporary copy of the project, temporary cache)")
      figures, tool_notes, cache = bench_tool.run(sys.executable, bundle, tmp / "tool",
                                                  repeats=args.repeats,
                                                  log=open(logfile, "a", encoding="utf-8"))
      meta["tool_samples_s"] = figures.pop("tool_samples")
      meta["cold_apply_stages_s"] = figures.pop("cold_apply_stages_s")
      results.update(figures)
      notes += tool_notes

    # the tree and the data
    args.tree_path, how = build_tree(args, cache, logfile)
    features = tree_features(args.tree_path)
    meta["tree"] = {"path": str(args.tree_path), "how": how, **features}
    log(f"tree: {how}")
    if not features["perf_hook_in_script"]:
      notes.append("run_pretraining.py does not pass a PerfLoggingHook to estimator.train in "
                   "this tree; tools/bench_train.py adds the tree's training_hooks."
                   "PerfLoggingHook to it (same measurement)")
    config = work / "albert_config.json"
    config.write_text(json.dumps(bench_flops.ALBERT_BASE, indent=1), encoding="utf-8")
    need_tf = {"tf1", "hvd"} - set(args.skip)
    if need_tf:
      rc, _ = run_logged([sys.executable, str(TOOLS / "bench_train.py"), "data", "--out",
                          str(work / "data"), "--seq", str(args.seq), "--preds",
                          str(args.preds), "--examples", str(args.examples), "--files", "2"],
                         tf_env(args.threads, args.threads, {}), logfile, timeout=300)
      if rc != 0:
        raise SystemExit(f"bench: writing the synthetic data failed: {tail(logfile)}")
    data_glob = str(work / "data" / "*.tfrecord")

    # 4 (first: the peak, while nothing else of ours runs)
    peak = peak1 = None
    if "peak" not in args.skip:
      log(f"4/5 matmul peak ({args.threads} threads and 1 thread)")
      peak = matmul_peak(work, args.threads, args, logfile)
      peak1 = matmul_peak(work, 1, args, logfile) if args.threads != 1 else peak
      meta["peak"] = {"threads": peak, "1thread": peak1}
    results["matmul_peak_gflop_per_s"] = peak and peak["gflop_per_s_best"]
    results["matmul_peak_1thread_gflop_per_s"] = peak1 and peak1["gflop_per_s_best"]

    # 2. training and 3. the peer: the two runs the headline ratio needs first.
    runs = meta["runs"]
    plan = []
    if "tf1" not in args.skip:
      plan.append(("tf_1proc", f"2/5 training, 1 process, batch {args.batch}, "
                   f"{args.warmup}+{args.timed} steps",
                   lambda: train_tf("1proc", work, data_glob, config, args, 1, args.threads,
                                    logfile)))
    if "peer" not in args.skip:
      plan.append(("peer", f"3/5 peer: HF AlbertForPreTraining, batch {args.batch}",
                   lambda: train_peer(work, args, args.threads, logfile)))
    if "hvd" not in args.skip:
      if not features["use_horovod_flag"]:
        runs["tf_hvd2"] = {"error": "run_pretraining.py has no --use_horovod in this tree"}
      else:
        plan.append(("tf_hvd2", f"2/5 training, horovodrun -np 2, batch {args.batch} per "
                     "process", lambda: train_tf("hvd2", work, data_glob, config, args, 2,
                                                  max(1, args.threads // 2), logfile)))
    for name, say, measure in plan:
      if args.deadline - time.time() < 60:
        runs[name] = {"error": f"skipped: the --budget of {args.budget} s was spent"}
        continue
      log(say)
      try:
        runs[name] = measure()
      except (RuntimeError, subprocess.TimeoutExpired) as e:
        runs[name] = {"error": str(e)}
    for name, run in runs.items():
      if run.get("error"):
        notes.append(f"{name}: {run['error']}")
        log(f"{name}: {run['error']}")
      results[f"{name}_examples_per_s"] = run.get("examples_per_s")
      results[f"{name}_step_s"] = run.get("step_s")
      results[f"{name}_examples_per_cpu_s"] = run.get("examples_per_cpu_s")
      results[f"{name}_cores_used"] = run.get("cores_used")

    ours = results.get("tf_1proc_examples_per_s")
    hvd2 = results.get("tf_hvd2_examples_per_s")
    peer = results.get("peer_examples_per_s")
    results["examples_per_s_ratio_vs_peer"] = ours / peer if ours and peer else None
    results["hvd2_examples_per_s_ratio_vs_peer"] = hvd2 / peer if hvd2 and peer else None
    results["hvd2_over_1proc"] = hvd2 / ours if hvd2 and ours else None
    ours_cpu = results.get("tf_1proc_examples_per_cpu_s")
    peer_cpu = results.get("peer_examples_per_cpu_s")
    results["examples_per_cpu_s_ratio_vs_peer"] = (ours_cpu / peer_cpu if ours_cpu and peer_cpu
                                                   else None)

    # 4. distance to the limit
    flops, parts = bench_flops.per_example(bench_flops.ALBERT_BASE, args.seq, args.preds)
    results["model_gflop_per_example"] = flops / 1e9
    meta["flops_parts_gflop"] = {k: v / 1e9 for k, v in parts.items()}
    meta["non_embedding_parameters"] = bench_flops.non_embedding_parameters(
        bench_flops.ALBERT_BASE)
    for name in ("tf_1proc", "tf_hvd2", "peer"):
      eps = results.get(f"{name}_examples_per_s")
      results[f"{name}_utilisation_pct"] = (100.0 * flops / 1e9 * eps /
                                            results["matmul_peak_gflop_per_s"]
                                            if eps and results.get("matmul_peak_gflop_per_s")
                                            else None)
      # Against the cores the run actually got (others' load on a shared machine):
      # the 1-thread peak x cores used.
      cores = results.get(f"{name}_cores_used")
      results[f"{name}_utilisation_of_cores_got_pct"] = (
          100.0 * flops / 1e9 * eps / (results["matmul_peak_1thread_gflop_per_s"] * cores)
          if eps and cores and results.get("matmul_peak_1thread_gflop_per_s") else None)
    results["gpu_examples_per_s"] = None
    notes.append("GPU: not available in this session; not measured")
    notes.append("the peer's masked-LM head computes vocabulary logits for every token "
                 f"({args.seq}), ours only for the {args.preds} masked positions; model FLOPs "
                 "count the masked positions for both")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)

  meta["loadavg_at_end"] = os.getloadavg()
  meta["total_s"] = round(time.time() - started, 1)
  out = {**{k: results.get(k) for k in UNITS if k in results}, "units": UNITS,
         "notes": notes, "meta": meta}
  table_text = table({**results, "meta": meta})
  print()
  print(f"ALBERT benchmark, {meta['started']}, {meta['machine'].get('cpu', '?')} "
        f"({meta['machine']['cpus']} cpus), batch {args.batch} x seq {args.seq}, "
        f"{args.timed} timed steps after {args.warmup} warm-up, optimizer {args.optimizer}"
        + (" [--quick: numbers mean nothing]" if args.quick else ""))
  print(table_text)
  for n in notes:
    print(f"- {n}")
  print(f"- load average (1 min) at start/end: {meta['machine']['loadavg_at_start'][0]:.2f} / "
        f"{meta['loadavg_at_end'][0]:.2f} on {meta['machine']['cpus']} cpus; total "
        f"{meta['total_s']:.0f} s")
  out["table"] = table_text
  path = Path(args.json)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", encoding="utf-8")
  print(f"- wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
