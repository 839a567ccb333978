"""Parts 2-4 of the benchmark as the parent process sees them: the tree to train, training runs
of the patched run_pretraining.py (through bench/train.py), the peer (bench/peer.py in
build/bench-venv) and the matmul peak. Each run is a subprocess; each returns what it measured.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import BENCH, BUNDLE, PROJECT, TOOLS
from bench.proc import loadavg, run_logged, tail

# The peer's pins: the same file as the conversion tests' build/hf-venv (torch's CPU wheel,
# transformers), installed into build/bench-venv.
PEER_REQUIREMENTS = PROJECT / "requirements-hf.txt"


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


def tf_env(threads_intra, threads_inter, extra):
  env = dict(os.environ)
  env.update({"TF_NUM_INTRAOP_THREADS": str(threads_intra),
              "TF_NUM_INTEROP_THREADS": str(threads_inter),
              "OMP_NUM_THREADS": str(threads_intra), "TF_CPP_MIN_LOG_LEVEL": "1",
              "PYTHONDONTWRITEBYTECODE": "1"})
  env.update(extra)
  return env


def matmul_peak(work, threads, precision, args, logfile):
  """TensorFlow's best n x n matmul in the precision's dtype, on THREADS threads."""
  path = work / f"peak-{precision}-{threads}.json"
  rc, _ = run_logged([sys.executable, str(BENCH / "train.py"), "peak", "--json",
                      str(path), "--n", str(args.peak_n), "--reps", str(args.peak_reps),
                      "--precision", precision],
                     tf_env(threads, 1, {}), logfile, timeout=300)
  if rc != 0:
    return None
  return json.loads(path.read_text(encoding="utf-8"))


def peer_matmul_peak(work, threads, precision, args, logfile):
  """PyTorch's best n x n matmul in the precision's dtype, in the peer's venv."""
  path = work / f"peer-peak-{precision}-{threads}.json"
  rc, _ = run_logged([str(peer_python()), str(BENCH / "peer.py"), "--peak", "--json",
                      str(path), "--n", str(args.peak_n), "--reps", str(args.peak_reps),
                      "--precision", precision, "--threads", str(threads)],
                     peer_env(threads), logfile, timeout=300)
  if rc != 0:
    return None
  return json.loads(path.read_text(encoding="utf-8"))


def write_text_inputs(work, args, logfile):
  """The inputs of the fine-tuning rows: spm model, MRPC files, SQuAD v1 file."""
  steps = args.warmup + args.timed
  rc, _ = run_logged([sys.executable, str(BENCH / "train.py"), "text", "--out",
                      str(work / "text"), "--classifier-examples", str(steps * args.batch),
                      "--squad-examples", str(steps * args.squad_batch)],
                     tf_env(args.threads, args.threads, {}), logfile, timeout=300)
  if rc != 0:
    raise SystemExit(f"bench: writing the fine-tuning inputs failed: {tail(logfile)}")
  text = work / "text"
  return {"spm_model": text / "spm.model", "spm_vocab": text / "spm.vocab",
          "mrpc": text / "mrpc", "squad": text / "squad_train.json"}


def pretraining_flags(args, data_glob, config, output_dir, steps):
  flags = [f"--input_file={data_glob}", f"--output_dir={output_dir}",
           f"--albert_config_file={config}", "--do_train", f"--train_batch_size={args.batch}",
           f"--max_seq_length={args.seq}", f"--max_predictions_per_seq={args.preds}",
           f"--num_train_steps={steps}", "--num_warmup_steps=0", "--learning_rate=1e-4",
           "--save_checkpoints_steps=1000000", f"--optimizer={args.optimizer}"]
  if args.use_einsum is not None:
    flags.append(f"--use_einsum={str(args.use_einsum).lower()}")
  return flags + list(args.tf_flag)


def fine_tuning_flags(task, args, inputs, config, output_dir, steps):
  """run_classifier.py's (MRPC) or run_squad_v1.py's training flags: STEPS steps, no eval."""
  common = [f"--albert_config_file={config}", f"--vocab_file={inputs['spm_vocab']}",
            f"--spm_model_file={inputs['spm_model']}", f"--output_dir={output_dir}",
            "--do_lower_case", "--do_train", "--learning_rate=1e-4",
            "--save_checkpoints_steps=1000000"]
  if task == "classifier":
    return common + ["--task_name=MRPC", f"--data_dir={inputs['mrpc']}",
                     f"--max_seq_length={args.seq}", f"--train_batch_size={args.batch}",
                     f"--train_step={steps}", "--warmup_step=0",
                     f"--optimizer={args.optimizer}"] + list(args.tf_flag)
  # run_squad_v1.py trains examples / batch x epochs steps; write_text_inputs wrote
  # STEPS batches of examples (rounded up to whole paragraphs), so 1 epoch is STEPS steps.
  return common + [f"--train_file={inputs['squad']}",
                   f"--train_feature_file={output_dir}.train.tfrecord",
                   f"--max_seq_length={args.squad_seq}", "--doc_stride=128",
                   "--max_query_length=64", f"--train_batch_size={args.squad_batch}",
                   "--num_train_epochs=1"] + list(args.tf_flag)


def predict_flags(task, args, inputs, config, output_dir):
  """run_classifier.py's (MRPC test set) or run_squad_v1.py's --do_predict flags, without
  training: both predict with the checkpoint of their training row, copied into OUTPUT_DIR
  (run_squad_v1.py evaluates the checkpoints there, run_classifier.py reads
  model.ckpt-best)."""
  common = [f"--albert_config_file={config}", f"--vocab_file={inputs['spm_vocab']}",
            f"--spm_model_file={inputs['spm_model']}", f"--output_dir={output_dir}",
            "--do_lower_case", "--do_predict"]
  if task == "classifier":
    return common + ["--task_name=MRPC", f"--data_dir={inputs['mrpc']}",
                     f"--max_seq_length={args.seq}",
                     f"--predict_batch_size={args.batch}"] + list(args.tf_flag)
  return common + [f"--predict_file={inputs['squad']}",
                   f"--predict_feature_file={output_dir}.predict.tfrecord",
                   f"--predict_feature_left_file={output_dir}.predict.left",
                   f"--max_seq_length={args.squad_seq}", "--doc_stride=128",
                   "--max_query_length=64",
                   f"--predict_batch_size={args.squad_batch}"] + list(args.tf_flag)


def copy_checkpoint(source, dest, name=None):
  """Copies the last checkpoint of directory SOURCE (model.ckpt-N.*) into DEST, as
  model.ckpt-NAME.* if NAME is given."""
  dest.mkdir(parents=True, exist_ok=True)
  steps = [int(p.name[len("model.ckpt-"):-len(".index")])
           for p in source.glob("model.ckpt-*.index") if p.name[11:-6].isdigit()]
  if steps:
    prefix = f"model.ckpt-{max(steps)}"
    for path in source.glob(prefix + ".*"):
      target = path.name if name is None else f"model.ckpt-{name}" + path.name[len(prefix):]
      shutil.copy2(path, dest / target)


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


def train_tf(name, work, script, script_flags, args, nproc, threads, logfile,
             predict_batch=None):
  """One training run of a patched training script; returns a dict of what it measured.

  script_flags(output_dir, steps): the script's flags for a run of STEPS steps. With
  PREDICT_BATCH the run predicts instead, and its steps are the batches of its predictions.
  """
  out = work / f"train-{name}"
  shutil.rmtree(out, ignore_errors=True)
  json_base = work / f"perf-{name}.json"
  for old in work.glob(f"perf-{name}.json.rank*"):
    old.unlink()
  steps = args.warmup + args.timed
  extra = dict(kv.split("=", 1) for kv in args.tf_env)
  if predict_batch:
    extra["BENCH_PREDICT_BATCH"] = str(predict_batch)
  env = tf_env(threads, args.inter_threads or threads, extra)
  runner = [sys.executable, str(BENCH / "train.py"), "run", "--tree", str(args.tree_path),
            "--script", script, "--json", str(json_base), "--"]
  if nproc == 1:
    cmd = runner + script_flags(out, steps)
  else:
    # The scripts divide their step count by the number of workers.
    horovodrun = Path(sys.executable).parent / "horovodrun"
    cmd = [str(horovodrun), "-np", str(nproc), "-H", f"localhost:{nproc}", "--gloo"] + runner \
        + script_flags(out, steps * nproc) + ["--use_horovod"]
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
    records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line]
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
  """build/bench-venv with requirements-hf.txt (torch on the CPU, transformers); checked with
  a one-step self-test, and made again when requirements-hf.txt is newer than its stamp."""
  venv = PROJECT / "build" / "bench-venv"
  python = peer_python()
  stamp = venv / ".bench-ok"
  if (stamp.exists() and python.exists()
      and stamp.stat().st_mtime >= PEER_REQUIREMENTS.stat().st_mtime):
    return python, stamp.read_text(encoding="utf-8").strip()
  if not python.exists():
    py311 = shutil.which("python3.11") or "python3.11"
    rc, _ = run_logged([py311, "-m", "venv", str(venv)], dict(os.environ), logfile, 300)
    if rc != 0:
      raise RuntimeError(f"cannot create {venv} with python3.11: {tail(logfile)}")
  rc, _ = run_logged([str(python), "-m", "pip", "install", "--quiet", "-r",
                      str(PEER_REQUIREMENTS)], dict(os.environ), logfile, 900)
  if rc != 0:
    raise RuntimeError(f"pip install -r {PEER_REQUIREMENTS.name} failed: {tail(logfile)}")
  check = subprocess.run([str(python), str(BENCH / "peer.py"), "--selftest", "--steps",
                          "1"], capture_output=True, text=True, timeout=300)
  if check.returncode != 0:
    # A transformers release newer than this torch supports: say so, with the versions.
    raise RuntimeError("the peer venv's transformers does not work with its torch: "
                       f"{(check.stderr.strip().splitlines() or [''])[-1]}")
  versions = json.loads(check.stdout.strip().splitlines()[-1])
  text = f"torch {versions['torch']}, transformers {versions['transformers']}"
  stamp.write_text(text + "\n", encoding="utf-8")
  return python, text


def peer_env(threads):
  # USE_TF=0: the venv has TensorFlow (for the conversion tests); transformers leaves it out.
  return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
              TRANSFORMERS_OFFLINE="1", HF_HUB_OFFLINE="1", USE_TF="0")


def train_peer(name, work, task, precision, compiled, batch, seq, args, threads, logfile,
               predict=False):
  """One training run of the peer (bench/peer.py), or with PREDICT its forward passes;
  returns a dict of what it measured."""
  path = work / f"{name}.json"
  if path.exists():
    path.unlink()
  python, versions = ensure_peer(logfile)
  cmd = [str(python), str(BENCH / "peer.py"), "--json", str(path), "--task", task,
         "--precision", precision, "--batch", str(batch), "--seq", str(seq), "--preds",
         str(args.preds), "--steps", str(args.warmup + args.timed), "--threads", str(threads)]
  if compiled:
    cmd.append("--compile")
  if predict:
    cmd.append("--predict")
  load_before = loadavg()
  usage = {}
  rc, secs = run_logged(cmd, peer_env(threads), logfile, timeout=timeout(args), usage=usage)
  result = {"command": " ".join(cmd), "rc": rc, "wall_s": secs, "versions": versions, **usage,
            "threads": threads, "loadavg_before": load_before, "loadavg_after": loadavg()}
  if rc != 0 or not path.exists():
    result["error"] = f"peer failed ({rc}); see {logfile}: {tail(logfile)}"
    return result
  record = json.loads(path.read_text(encoding="utf-8"))
  r, timed = rate(record["durations_s"], batch, args.warmup)
  result.update({"examples_per_s": r, "step_s": statistics.median(timed) if timed else None,
                 "timed_steps": len(timed), "durations_s": record["durations_s"],
                 "cores_used": cores_used(record, args.warmup),
                 "examples_per_cpu_s": per_cpu_second(record, batch, args.warmup),
                 "max_rss_mib": record.get("max_rss_mib"), "parameters": record["parameters"],
                 "interop_threads": record.get("interop_threads")})
  return result
