"""`make bench`: what the tool costs, and how fast the patched ALBERT trains next to its peer.

Prints one table and writes bench/results.json. A benchmark prints figures: it fails only
when something cannot run, never on a number. The parts:

  1. the tool (tools/apply_patches.py) on a temporary copy of the project, next to the floor:
     git clone of the pinned commit + tf_upgrade_v2 on it        (bench/tool.py)
  2. training throughput of the patched scripts on this CPU, ALBERT-base shapes, one row per
     task and precision: run_pretraining.py (seq 128), run_squad_v1.py (seq 384),
     run_classifier.py (seq 128), each with --precision=fp32 and bf16, and their peak
     memory; --do_predict of run_squad_v1.py and run_classifier.py; and
     run_pretraining.py under horovodrun -np 2                    (bench/train.py)
  3. the peer: HuggingFace transformers' AlbertForPreTraining, AlbertForQuestionAnswering and
     AlbertForSequenceClassification on PyTorch, same shapes, eager and torch.compile'd,
     fp32 and torch.autocast bf16, in a venv of its own (build/bench-venv); each row is
     compared with the faster of eager and compiled               (bench/peer.py)
  4. model FLOPs x examples/s over a matmul peak of the row's precision measured here
                                                                  (bench/flops.py)
  5. GPU: not measured here (no GPU on this machine).
  6. pretraining data: create_pretraining_data.py --output_dir, MB of text per second with 1
     and 2 workers, upstream's single process as the baseline, peak memory per worker on a
     corpus 1x and 4x the size (--data-only runs this part alone)   (bench/data.py)
  7. gradient accumulation: pretraining fp32 at micro-batch b x 8 against batch 8b, peak
     memory and examples/s                                         (bench/accumulation.py)

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

from bench import BENCH, BUNDLE, PROJECT, accumulation, data, flops, measure, report, tool
from bench.proc import log, machine, run_logged, tail

TASKS = ("pretrain", "squad", "classifier")
PRECISIONS = ("fp32", "bf16")
PEER_MODES = ("eager", "compiled")
PREDICT_TASKS = ("squad", "classifier")
# Each row's training script, and the peer's model for it.
SCRIPTS = {"pretrain": "run_pretraining.py", "squad": "run_squad_v1.py",
           "classifier": "run_classifier.py"}
PEER_MODELS = {"pretrain": "AlbertForPreTraining", "squad": "AlbertForQuestionAnswering",
               "classifier": "AlbertForSequenceClassification"}


def parse(argv):
  """The options; --quick shrinks the run to a smoke test."""
  p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=8,
                 help="examples per step and process (pretraining and classifier rows)")
  p.add_argument("--seq", type=int, default=128, help="pretraining and classifier sequence")
  p.add_argument("--squad-batch", type=int, default=4)
  p.add_argument("--squad-seq", type=int, default=384)
  p.add_argument("--tasks", default=",".join(TASKS),
                 help=f"comma-separated rows to train, of {','.join(TASKS)}")
  p.add_argument("--precisions", default=",".join(PRECISIONS),
                 help=f"comma-separated precisions of each row, of {','.join(PRECISIONS)}")
  p.add_argument("--peer-modes", default=",".join(PEER_MODES),
                 help=f"comma-separated ways to run the peer, of {','.join(PEER_MODES)}")
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
                 help="extra flag of our training and prediction runs")
  p.add_argument("--xla", action="store_true",
                 help="pass --use_xla to our runs (XLA's JIT; the first steps compile, so "
                      "give --warmup enough steps)")
  p.add_argument("--tree", default=os.environ.get("ALBERT_TREE"),
                 help="train this tree instead of building build/bench/albert "
                      "(default: $ALBERT_TREE)")
  p.add_argument("--skip", action="append", default=[],
                 choices=["tool", "tf1", "hvd", "peer", "peak", "data", "predict", "accum"])
  p.add_argument("--data-only", action="store_true",
                 help="run only part 6 (pretraining data) and merge its figures into the "
                      "results file")
  p.add_argument("--data-mb", type=float, default=1.0,
                 help="MB of text in the pretraining data corpus (the 4x corpus is 4 times)")
  p.add_argument("--data-shard-mb", type=float, default=0.125,
                 help="--shard_size_mb of the pretraining data runs")
  p.add_argument("--data-dupe", type=int, default=1,
                 help="--dupe_factor of the pretraining data runs")
  p.add_argument("--data-test-fraction", type=float, default=0.05,
                 help="--test_fraction of the sharded pretraining data runs")
  p.add_argument("--repeats", type=int, default=3, help="repeats of the cheap tool timings")
  p.add_argument("--peak-n", type=int, default=2048)
  p.add_argument("--peak-reps", type=int, default=8)
  p.add_argument("--run-timeout", type=int, default=420, help="limit of one training run (s)")
  p.add_argument("--budget", type=int, default=3600,
                 help="seconds the whole benchmark may take; a training run that would start "
                      "with less than a minute left is skipped, with a note")
  p.add_argument("--examples", type=int, default=512, help="synthetic examples written")
  p.add_argument("--json", default=str(BENCH / "results.json"))
  p.add_argument("--quick", action="store_true",
                 help="smoke run: batch 2, 1 warm-up + 1 timed step, 1 repeat; numbers "
                      "mean nothing")
  args = p.parse_args(argv)
  for option, allowed in (("tasks", TASKS), ("precisions", PRECISIONS),
                          ("peer_modes", PEER_MODES)):
    chosen = [v for v in getattr(args, option).split(",") if v]
    wrong = sorted(set(chosen) - set(allowed))
    if wrong:
      p.error(f"--{option.replace('_', '-')}: unknown {', '.join(wrong)}; "
              f"choose from {','.join(allowed)}")
    setattr(args, option, chosen)
  if args.xla:
    args.tf_flag.append("--use_xla")
  if args.quick:
    args.batch, args.squad_batch, args.warmup, args.timed, args.repeats = 2, 1, 1, 1, 1
    args.peak_n, args.peak_reps, args.examples = 512, 2, 32
    args.data_mb, args.data_shard_mb = 0.02, 0.004
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
          "max_predictions_per_seq": args.preds, "squad_batch": args.squad_batch,
          "squad_seq": args.squad_seq, "tasks": args.tasks, "precisions": args.precisions,
          "peer_modes": args.peer_modes, "warmup_steps": args.warmup,
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
  """The tree (sets args.tree_path), its config and the inputs; returns
  (config, pretraining data glob, fine-tuning inputs, the tree's features)."""
  args.tree_path, how = measure.build_tree(args, cache, logfile)
  features = measure.tree_features(args.tree_path)
  meta["tree"] = {"path": str(args.tree_path), "how": how, **features}
  log(f"tree: {how}")
  config = work / "albert_config.json"
  config.write_text(json.dumps(flops.ALBERT_BASE, indent=1), encoding="utf-8")
  data_glob = str(work / "data" / "*.tfrecord")
  if "pretrain" in args.tasks and {"tf1", "hvd"} - set(args.skip):
    rc, _ = run_logged([sys.executable, str(BENCH / "train.py"), "data", "--out",
                        str(work / "data"), "--seq", str(args.seq), "--preds",
                        str(args.preds), "--examples", str(args.examples), "--files", "2"],
                       measure.tf_env(args.threads, args.threads, {}), logfile, timeout=300)
    if rc != 0:
      raise SystemExit(f"bench: writing the synthetic data failed: {tail(logfile)}")
  inputs = None
  if {"squad", "classifier"} & set(args.tasks) and "tf1" not in args.skip:
    inputs = measure.write_text_inputs(work, args, logfile)
  return config, data_glob, inputs, features


def peak_figures(args, work, logfile, results, meta):
  """Part 4's matmul peaks, measured first, while nothing else of ours runs: per precision,
  TensorFlow's and (where the peer runs) PyTorch's; the higher is the row's limit."""
  if "peak" in args.skip:
    return
  meta["peak"] = {}
  for precision in args.precisions:
    log(f"4/5 matmul peak, {precision} ({args.threads} threads and 1 thread)")
    found = {}
    for threads in sorted({args.threads, 1}, reverse=True):
      found[f"tf_{threads}"] = measure.matmul_peak(work, threads, precision, args, logfile)
      if "peer" not in args.skip:
        found[f"torch_{threads}"] = measure.peer_matmul_peak(work, threads, precision, args,
                                                             logfile)
    meta["peak"][precision] = found
    suffix = "" if precision == "fp32" else f"_{precision}"
    results[f"matmul_peak{suffix}_gflop_per_s"] = best_peak(found, args.threads)
    results[f"matmul_peak{suffix}_1thread_gflop_per_s"] = best_peak(found, 1)


def best_peak(found, threads):
  """The best rate of the peaks FOUND with THREADS threads (ours or the peer's), or None."""
  rates = [r["gflop_per_s_best"] for k, r in found.items()
           if r and k.endswith(f"_{threads}")]
  return max(rates) if rates else None


def batch_and_seq(args, task):
  """A row's batch per process and sequence length: SQuAD's own, or the others'."""
  return (args.squad_batch, args.squad_seq) if task == "squad" else (args.batch, args.seq)


def row_name(task, precision, peer_mode=None):
  return f"{task}_{precision}" + (f"_peer_{peer_mode}" if peer_mode else "")


def predict_name(task, precision, peer_mode=None):
  return f"{task}_{precision}_predict" + (f"_peer_{peer_mode}" if peer_mode else "")


def predict_tasks(args):
  """The rows whose --do_predict is timed too: SQuAD and the classifier."""
  if "predict" in args.skip:
    return []
  return [task for task in PREDICT_TASKS if task in args.tasks]


def training_plan(args, work, data_glob, inputs, config, features, logfile, runs):
  """Parts 2 and 3 as (name, what to log, measure), a row's runs side by side: ours, then the
  peer's, for each task and precision; the Horovod run last."""

  def script_flags(task, precision=None):
    def flags(out, steps):
      if task == "pretrain":
        chosen = measure.pretraining_flags(args, data_glob, config, out, steps)
      else:
        chosen = measure.fine_tuning_flags(task, args, inputs, config, out, steps)
      return chosen + ([f"--precision={precision}"] if precision else [])
    return flags

  def ours(task, precision):
    return lambda: measure.train_tf(row_name(task, precision), work, SCRIPTS[task],
                                    script_flags(task, precision), args, 1, args.threads,
                                    logfile)

  def peer(task, precision, mode, batch, seq, predict=False):
    name = predict_name(task, precision, mode) if predict else row_name(task, precision, mode)
    return lambda: measure.train_peer(name, work, task, precision, mode == "compiled", batch,
                                      seq, args, args.threads, logfile, predict=predict)

  def ours_predict(task, precision, batch):
    def flags(out, steps):
      del steps  # the prediction file holds warm-up + timed batches
      # The scripts predict with the checkpoints in --output_dir: the training row's.
      measure.copy_checkpoint(work / f"train-{row_name(task, precision)}", out,
                              None if task == "squad" else "best")
      return (measure.predict_flags(task, args, inputs, config, out)
              + [f"--precision={precision}"])
    return lambda: measure.train_tf(predict_name(task, precision), work, SCRIPTS[task], flags,
                                    args, 1, args.threads, logfile, predict_batch=batch)

  plan = []
  for task in args.tasks:
    batch, seq = batch_and_seq(args, task)
    for precision in args.precisions:
      if "tf1" not in args.skip:
        plan.append((row_name(task, precision),
                     f"2/5 {SCRIPTS[task]} --precision={precision}, 1 process, batch {batch} x "
                     f"seq {seq}, {args.warmup}+{args.timed} steps", ours(task, precision)))
      if "peer" not in args.skip:
        for mode in args.peer_modes:
          plan.append((row_name(task, precision, mode),
                       f"3/5 peer: {PEER_MODELS[task]}, {precision}, {mode}, batch {batch} x "
                       f"seq {seq}", peer(task, precision, mode, batch, seq)))
  for task in predict_tasks(args):
    batch, seq = batch_and_seq(args, task)
    for precision in args.precisions:
      if "tf1" not in args.skip:
        plan.append((predict_name(task, precision),
                     f"2/5 {SCRIPTS[task]} --do_predict --precision={precision}, batch {batch} "
                     f"x seq {seq}", ours_predict(task, precision, batch)))
      if "peer" not in args.skip:
        for mode in args.peer_modes:
          plan.append((predict_name(task, precision, mode),
                       f"3/5 peer: {PEER_MODELS[task]}, predict, {precision}, {mode}, batch "
                       f"{batch} x seq {seq}", peer(task, precision, mode, batch, seq, True)))
  if "hvd" not in args.skip and "pretrain" in args.tasks:
    if not features["use_horovod_flag"]:
      runs["tf_hvd2"] = {"error": "run_pretraining.py has no --use_horovod in this tree"}
    else:
      plan.append(("tf_hvd2", f"2/5 run_pretraining.py, horovodrun -np 2, batch {args.batch} "
                   "per process", lambda: measure.train_tf(
                       "hvd2", work, SCRIPTS["pretrain"], script_flags("pretrain"), args, 2,
                       max(1, args.threads // 2), logfile)))
  if ("accum" not in args.skip and "tf1" not in args.skip and "pretrain" in args.tasks
      and "fp32" in args.precisions):
    plan += accumulation.plan(
        args, lambda name, run_args, flags: measure.train_tf(
            name, work, SCRIPTS["pretrain"], flags, run_args, 1, args.threads, logfile),
        lambda run_args, out, steps: measure.pretraining_flags(run_args, data_glob, config,
                                                               out, steps))
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
    for figure in ("examples_per_s", "step_s", "examples_per_cpu_s", "cores_used"):
      results[f"{name}_{figure}"] = run.get(figure)


def peer_ratios(args, results, meta):
  """Part 3's ratios: ours over the peer's best (eager or compiled), per row; and the keys
  of earlier benchmarks, which were the fp32 pretraining row."""
  best = meta.setdefault("peer_best", {})
  runs = meta.get("runs", {})
  rows = [(row_name(t, p), lambda m, t=t, p=p: row_name(t, p, m))
          for t in args.tasks for p in args.precisions]
  rows += [(predict_name(t, p), lambda m, t=t, p=p: predict_name(t, p, m))
           for t in predict_tasks(args) for p in args.precisions]
  for name, peer_name in rows:
    peers = {mode: results.get(f"{peer_name(mode)}_examples_per_s")
             for mode in args.peer_modes}
    peers = {mode: rate for mode, rate in peers.items() if rate}
    mode = max(peers, key=peers.get) if peers else None
    best[name] = mode
    peer = peers.get(mode)
    results[f"{name}_peer_examples_per_s"] = peer
    ours = results.get(f"{name}_examples_per_s")
    results[f"{name}_ratio_vs_peer"] = ours / peer if ours and peer else None
    if name.endswith("_predict"):
      continue
    # Peak resident memory of the training run, ours (the script's process) and the
    # peer's (the run that counted, else eager).
    ours_rss = ((runs.get(name) or {}).get("per_rank") or [{}])[0].get("max_rss_mib")
    peer_rss = (runs.get(peer_name(mode or "eager")) or {}).get("max_rss_mib")
    results[f"{name}_peak_rss_mb"] = ours_rss
    results[f"{name}_peer_peak_rss_mb"] = peer_rss
    results[f"{name}_peak_rss_ratio_vs_peer"] = (ours_rss / peer_rss if ours_rss and peer_rss
                                                 else None)
    # Each of the peer's modes too: torch.compile recomputes element-wise ops in the
    # backward instead of keeping them, eager keeps them as TensorFlow does.
    for each in args.peer_modes:
      results[f"{name}_peer_{each}_peak_rss_mb"] = (runs.get(peer_name(each)) or {}).get(
          "max_rss_mib")
  for figure in ("examples_per_s", "step_s", "examples_per_cpu_s", "cores_used"):
    results[f"tf_1proc_{figure}"] = results.get(f"pretrain_fp32_{figure}")
    peer_name = row_name("pretrain", "fp32", best.get("pretrain_fp32") or "eager")
    results[f"peer_{figure}"] = results.get(f"{peer_name}_{figure}")
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


def utilisation(gflop, examples_per_s, peak):
  return 100.0 * gflop * examples_per_s / peak if gflop and examples_per_s and peak else None


def limit_figures(args, results, notes, meta):
  """Part 4: model FLOPs per example, and each run's utilisation of the matmul peak of its
  precision."""
  meta["flops_parts_gflop"] = {}
  for task in TASKS:
    seq = args.squad_seq if task == "squad" else args.seq
    per_example, parts = flops.per_example(flops.ALBERT_BASE, seq, args.preds, task)
    results[f"{task}_gflop_per_example"] = per_example / 1e9
    meta["flops_parts_gflop"][task] = {k: v / 1e9 for k, v in parts.items()}
  results["model_gflop_per_example"] = results["pretrain_gflop_per_example"]
  meta["non_embedding_parameters"] = flops.non_embedding_parameters(flops.ALBERT_BASE)
  for task in args.tasks:
    gflop = results[f"{task}_gflop_per_example"]
    for precision in args.precisions:
      suffix = "" if precision == "fp32" else f"_{precision}"
      peak = results.get(f"matmul_peak{suffix}_gflop_per_s")
      for who in ("", "_peer"):
        name = row_name(task, precision) + who
        results[f"{name}_utilisation_pct"] = utilisation(
            gflop, results.get(f"{name}_examples_per_s"), peak)
        if task in predict_tasks(args):  # prediction: the forward pass, a third of a step
          name = predict_name(task, precision) + who
          results[f"{name}_utilisation_pct"] = utilisation(
              gflop / 3, results.get(f"{name}_examples_per_s"), peak)
  gflop = results["model_gflop_per_example"]
  for name in ("tf_1proc", "tf_hvd2", "peer"):
    eps = results.get(f"{name}_examples_per_s")
    results[f"{name}_utilisation_pct"] = utilisation(
        gflop, eps, results.get("matmul_peak_gflop_per_s"))
    # Against the cores the run actually got (others' load on a shared machine):
    # the 1-thread peak x cores used.
    cores = results.get(f"{name}_cores_used")
    peak1 = results.get("matmul_peak_1thread_gflop_per_s")
    results[f"{name}_utilisation_of_cores_got_pct"] = utilisation(
        gflop, eps, peak1 * cores if peak1 and cores else None)
  results["gpu_examples_per_s"] = None
  notes.append("GPU: no GPU on this machine, and the GPU machines available cannot run "
               "TensorFlow 2.15 (Python 3.12 there); not measured")
  notes.append("the peer's masked-LM head computes vocabulary logits for every token "
               f"({args.seq}), ours only for the {args.preds} masked positions; model FLOPs "
               "count the masked positions for both")


def data_figures(args, work, logfile, results, notes, meta):
  """Part 6, on the tree prepare_training chose (or, alone, on one built here)."""
  if "data" in args.skip:
    return
  if not getattr(args, "tree_path", None):
    args.tree_path, how = measure.build_tree(args, None, logfile)
    log(f"tree: {how}")
  log("6/6 pretraining data: --output_dir with 1 and 2 workers, upstream's single process, "
      "1x and 4x corpus")
  data.run(args, work, args.tree_path, logfile, results, notes, meta)
  notes += [n for n in report.target_notes(results) if "data_" in n]


def main_data_only(args):
  """--data-only: part 6 alone, merged into the results file's other figures."""
  started, work, logfile, meta = start(args)
  results, notes = {}, []
  data_figures(args, work, logfile, results, notes, meta)
  meta["data"]["loadavg_at_start"] = meta["machine"]["loadavg_at_start"]
  meta["data"]["loadavg_at_end"] = os.getloadavg()
  meta["data"]["started"] = meta["started"]
  meta["data"]["total_s"] = round(time.time() - started, 1)
  report.merge_data(args, results, notes, meta)
  return 0


def main(argv=None):
  args = parse(argv)
  if args.data_only:
    return main_data_only(args)
  started, work, logfile, meta = start(args)
  results, notes = {}, []
  if "peer" not in args.skip:
    set_up_peer(args, meta, logfile)
  tmp = Path(tempfile.mkdtemp(prefix="albert-bench-"))
  try:
    cache = tool_figures(args, tmp, logfile, results, notes, meta)
    config, data_glob, inputs, features = prepare_training(args, cache, work, logfile, notes,
                                                           meta)
    peak_figures(args, work, logfile, results, meta)
    plan = training_plan(args, work, data_glob, inputs, config, features, logfile,
                         meta["runs"])
    training_figures(args, plan, meta["runs"], results, notes)
    peer_ratios(args, results, meta)
    accumulation.figures(meta["runs"], results)
    limit_figures(args, results, notes, meta)
    notes += [n for n in report.target_notes(results) if "data_" not in n]
    data_figures(args, work, logfile, results, notes, meta)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  meta["loadavg_at_end"] = os.getloadavg()
  meta["total_s"] = round(time.time() - started, 1)
  report.write(args, results, notes, meta)
  return 0


if __name__ == "__main__":
  sys.exit(main())
