"""`make bench`: what the tool costs, and how fast the patched ALBERT trains next to its peer.

Prints one table and writes bench/results.json. A benchmark prints figures: it fails only
when something cannot run, never on a number. The parts:

  1. the tool (tools/apply_patches.py) on a temporary copy of the project, next to the floor:
     git clone of the pinned commit + tf_upgrade_v2 on it        (bench/tool.py)
  2. training throughput of the patched run_pretraining.py on this CPU, ALBERT-base shapes,
     1 process and horovodrun -np 2                               (bench/train.py)
  3. the peer: HuggingFace transformers AlbertForPreTraining on PyTorch, same shapes, in a
     venv of its own (build/bench-venv)                           (bench/peer.py)
  4. model FLOPs x examples/s over a matmul peak measured here    (bench/flops.py)
  5. GPU: not measured here (no GPU on this machine).

Run it from the checkout with the project's venv: `.venv/bin/python -m bench` (what `make bench`
does). `--quick` makes a short smoke run (tiny batch, 1 timed step) whose numbers mean nothing.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from albert_patches.fetch import SHARED_BUNDLE as BUNDLE

from bench import BENCH, PROJECT, flops, measure, report, tool
from bench.proc import log, machine, run_logged, tail


def parse(argv):
  """The options; --quick shrinks the run to a smoke test."""
  p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
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
  p.add_argument("--json", default=str(BENCH / "results.json"))
  p.add_argument("--quick", action="store_true",
                 help="smoke run: batch 2, 1 warm-up + 1 timed step, 1 repeat; numbers "
                      "mean nothing")
  args = p.parse_args(argv)
  if args.quick:
    args.batch, args.warmup, args.timed, args.repeats = 2, 1, 1, 1
    args.peak_n, args.peak_reps, args.examples = 512, 2, 32
  return args


def start(args):
  """An empty work directory, its log, and the run's settings; sets args.deadline."""
  started = time.time()
  args.deadline = started + args.budget
  work = PROJECT / "build" / "bench" / "work"
  shutil.rmtree(work, ignore_errors=True)
  work.mkdir(parents=True)
  logfile = work / "bench.log"
  meta = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
          "machine": machine(), "batch_per_process": args.batch, "seq": args.seq,
          "max_predictions_per_seq": args.preds, "warmup_steps": args.warmup,
          "timed_steps": args.timed, "threads": args.threads, "optimizer": args.optimizer,
          "quick": args.quick, "log": str(logfile), "runs": {}}
  log(f"log: {logfile}; load average at start {meta['machine']['loadavg_at_start']}")
  return started, work, logfile, meta


def set_up_peer(args, meta, logfile):
  """Creates the peer's venv on the first run; that time does not count against --budget."""
  setup = time.time()
  try:
    meta["peer_venv"] = measure.ensure_peer(logfile)[1]
  except (RuntimeError, subprocess.TimeoutExpired) as e:
    meta["peer_venv"] = f"error: {e}"
    log(f"peer venv: {e}")
  meta["peer_venv_setup_s"] = round(time.time() - setup, 1)
  args.deadline += time.time() - setup


def tool_figures(args, tmp, logfile, results, notes, meta):
  """Part 1; returns the temporary cache it filled (None when skipped)."""
  bundle = Path(os.environ.get("ALBERT_UPSTREAM") or BUNDLE)
  if "tool" not in args.skip and not bundle.exists():
    notes.append(f"tool timings skipped: no upstream bundle at {bundle} (set ALBERT_UPSTREAM "
                 "to a local clone or bundle of upstream ALBERT)")
    args.skip.append("tool")
  if "tool" in args.skip:
    return None
  log("1/5 tool timings (temporary copy of the project, temporary cache)")
  figures, tool_notes, cache = tool.run(sys.executable, bundle, tmp / "tool",
                                        repeats=args.repeats,
                                        log=open(logfile, "a", encoding="utf-8"))
  meta["tool_samples_s"] = figures.pop("tool_samples")
  meta["cold_apply_stages_s"] = figures.pop("cold_apply_stages_s")
  results.update(figures)
  notes += tool_notes
  return cache


def prepare_training(args, cache, work, logfile, notes, meta):
  """The tree (sets args.tree_path), its config and the synthetic data; returns
  (config, data_glob, the tree's features)."""
  args.tree_path, how = measure.build_tree(args, cache, logfile)
  features = measure.tree_features(args.tree_path)
  meta["tree"] = {"path": str(args.tree_path), "how": how, **features}
  log(f"tree: {how}")
  if not features["perf_hook_in_script"]:
    notes.append("run_pretraining.py does not pass a PerfLoggingHook to estimator.train in "
                 "this tree; bench/train.py adds the tree's training_hooks."
                 "PerfLoggingHook to it (same measurement)")
  config = work / "albert_config.json"
  config.write_text(json.dumps(flops.ALBERT_BASE, indent=1), encoding="utf-8")
  if {"tf1", "hvd"} - set(args.skip):
    rc, _ = run_logged([sys.executable, str(BENCH / "train.py"), "data", "--out",
                        str(work / "data"), "--seq", str(args.seq), "--preds",
                        str(args.preds), "--examples", str(args.examples), "--files", "2"],
                       measure.tf_env(args.threads, args.threads, {}), logfile, timeout=300)
    if rc != 0:
      raise SystemExit(f"bench: writing the synthetic data failed: {tail(logfile)}")
  return config, str(work / "data" / "*.tfrecord"), features


def peak_figures(args, work, logfile, results, meta):
  """Part 4's matmul peak, measured first, while nothing else of ours runs."""
  peak = peak1 = None
  if "peak" not in args.skip:
    log(f"4/5 matmul peak ({args.threads} threads and 1 thread)")
    peak = measure.matmul_peak(work, args.threads, args, logfile)
    peak1 = measure.matmul_peak(work, 1, args, logfile) if args.threads != 1 else peak
    meta["peak"] = {"threads": peak, "1thread": peak1}
  results["matmul_peak_gflop_per_s"] = peak and peak["gflop_per_s_best"]
  results["matmul_peak_1thread_gflop_per_s"] = peak1 and peak1["gflop_per_s_best"]


def training_plan(args, work, data_glob, config, features, logfile, runs):
  """Parts 2 and 3 as (name, what to log, measure): the two runs the headline ratio needs
  first."""
  plan = []
  if "tf1" not in args.skip:
    plan.append(("tf_1proc", f"2/5 training, 1 process, batch {args.batch}, "
                 f"{args.warmup}+{args.timed} steps",
                 lambda: measure.train_tf("1proc", work, data_glob, config, args, 1,
                                          args.threads, logfile)))
  if "peer" not in args.skip:
    plan.append(("peer", f"3/5 peer: HF AlbertForPreTraining, batch {args.batch}",
                 lambda: measure.train_peer(work, args, args.threads, logfile)))
  if "hvd" not in args.skip:
    if not features["use_horovod_flag"]:
      runs["tf_hvd2"] = {"error": "run_pretraining.py has no --use_horovod in this tree"}
    else:
      plan.append(("tf_hvd2", f"2/5 training, horovodrun -np 2, batch {args.batch} per "
                   "process", lambda: measure.train_tf("hvd2", work, data_glob, config, args, 2,
                                                      max(1, args.threads // 2), logfile)))
  return plan


def training_figures(args, plan, runs, results, notes):
  """Runs the plan within --budget, and files each run's figures and errors."""
  for name, say, run in plan:
    if args.deadline - time.time() < 60:
      runs[name] = {"error": f"skipped: the --budget of {args.budget} s was spent"}
      continue
    log(say)
    try:
      runs[name] = run()
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


def peer_ratios(results):
  """Part 3's ratios: ours over the peer, and two processes over one."""
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


def limit_figures(args, results, notes, meta):
  """Part 4: model FLOPs per example, and each run's utilisation of the matmul peak."""
  per_example, parts = flops.per_example(flops.ALBERT_BASE, args.seq, args.preds)
  results["model_gflop_per_example"] = per_example / 1e9
  meta["flops_parts_gflop"] = {k: v / 1e9 for k, v in parts.items()}
  meta["non_embedding_parameters"] = flops.non_embedding_parameters(flops.ALBERT_BASE)
  for name in ("tf_1proc", "tf_hvd2", "peer"):
    eps = results.get(f"{name}_examples_per_s")
    results[f"{name}_utilisation_pct"] = (100.0 * per_example / 1e9 * eps /
                                          results["matmul_peak_gflop_per_s"]
                                          if eps and results.get("matmul_peak_gflop_per_s")
                                          else None)
    # Against the cores the run actually got (others' load on a shared machine):
    # the 1-thread peak x cores used.
    cores = results.get(f"{name}_cores_used")
    results[f"{name}_utilisation_of_cores_got_pct"] = (
        100.0 * per_example / 1e9 * eps / (results["matmul_peak_1thread_gflop_per_s"] * cores)
        if eps and cores and results.get("matmul_peak_1thread_gflop_per_s") else None)
  results["gpu_examples_per_s"] = None
  notes.append("GPU: not available in this session; not measured")
  notes.append("the peer's masked-LM head computes vocabulary logits for every token "
               f"({args.seq}), ours only for the {args.preds} masked positions; model FLOPs "
               "count the masked positions for both")


def main(argv=None):
  args = parse(argv)
  started, work, logfile, meta = start(args)
  results, notes = {}, []
  if "peer" not in args.skip:
    set_up_peer(args, meta, logfile)
  tmp = Path(tempfile.mkdtemp(prefix="albert-bench-"))
  try:
    cache = tool_figures(args, tmp, logfile, results, notes, meta)
    config, data_glob, features = prepare_training(args, cache, work, logfile, notes, meta)
    peak_figures(args, work, logfile, results, meta)
    plan = training_plan(args, work, data_glob, config, features, logfile, meta["runs"])
    training_figures(args, plan, meta["runs"], results, notes)
    peer_ratios(results)
    limit_figures(args, results, notes, meta)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  meta["loadavg_at_end"] = os.getloadavg()
  meta["total_s"] = round(time.time() - started, 1)
  report.write(args, results, notes, meta)
  return 0


if __name__ == "__main__":
  sys.exit(main())
