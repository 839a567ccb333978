#!/usr/bin/env python3
"""The TensorFlow side of `python -m bench`; each mode runs in a process of its own.

  train.py data --out DIR --seq S --preds P --examples N --files F --vocab V
      writes synthetic pretraining tfrecords in run_pretraining.py's input format.
  train.py text --out DIR --classifier-examples N --squad-examples M
      writes what run_classifier.py and run_squad_v1.py read: a sentencepiece model, MRPC
      files and a SQuAD v1 training file (tools/albert_data.py's generated tasks).
  train.py peak --json PATH [--n N] [--reps R] [--precision fp32|bf16]
      measures a matmul peak (GFLOP/s) in that precision with the threads TF gets from the
      environment.
  train.py run --tree TREE --script SCRIPT --json PATH -- SCRIPT_FLAGS...
      runs TREE/SCRIPT (run_pretraining.py, run_classifier.py, run_squad_v1.py) unchanged and
      records the step times of its PerfLoggingHook (training), or of the batches its
      estimator.predict yields (prediction; BENCH_PREDICT_BATCH gives the batch).

`run` times training with the PerfLoggingHook (training_hooks.py) that each training script
passes to estimator.train: its step times, and the process CPU time of each step, are copied to
PATH. Each process writes PATH.rank<R>.
"""
import argparse
import json
import os
import resource
import runpy
import sys
import time


def _threads_env():
  return {k: os.environ.get(k) for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                         "OMP_NUM_THREADS", "TF_XLA_FLAGS",
                                         "TF_ENABLE_ONEDNN_OPTS")}


def write_data(args):
  import numpy as np
  import tensorflow as tf

  rng = np.random.default_rng(12345)
  os.makedirs(args.out, exist_ok=True)
  per_file = -(-args.examples // args.files)
  paths = []
  for f in range(args.files):
    path = os.path.join(args.out, f"synthetic-{f:02d}.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
      for _ in range(per_file):
        # A pair of "sentences" filling the sequence, as create_pretraining_data.py pads it.
        length = int(rng.integers(args.seq // 2, args.seq + 1))
        ids = rng.integers(5, args.vocab, size=length)
        cut = int(rng.integers(1, length))
        input_ids = np.zeros(args.seq, np.int64)
        input_ids[:length] = ids
        mask = np.zeros(args.seq, np.int64)
        mask[:length] = 1
        segment = np.zeros(args.seq, np.int64)
        segment[cut:length] = 1
        n_pred = min(args.preds, max(1, length // 7))
        positions = np.zeros(args.preds, np.int64)
        positions[:n_pred] = np.sort(rng.choice(np.arange(1, length), n_pred, replace=False))
        lm_ids = np.zeros(args.preds, np.int64)
        lm_ids[:n_pred] = input_ids[positions[:n_pred]]
        weights = np.zeros(args.preds, np.float32)
        weights[:n_pred] = 1.0

        def ints(values):
          return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

        features = {
            "input_ids": ints(input_ids),
            "input_mask": ints(mask),
            "segment_ids": ints(segment),
            "masked_lm_positions": ints(positions),
            "masked_lm_ids": ints(lm_ids),
            "masked_lm_weights": tf.train.Feature(
                float_list=tf.train.FloatList(value=[float(w) for w in weights])),
            "next_sentence_labels": ints([int(rng.integers(0, 2))]),
        }
        example = tf.train.Example(features=tf.train.Features(feature=features))
        writer.write(example.SerializeToString())
    paths.append(path)
  print(json.dumps({"files": paths, "examples": per_file * args.files}))
  return 0


def write_text_data(args):
  """The spm model, MRPC directory and SQuAD file, sized for the steps the benchmark times."""
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "tools"))
  import albert_data  # pylint: disable=g-import-not-at-top

  os.makedirs(args.out, exist_ok=True)
  corpus = albert_data.write_corpus(os.path.join(args.out, "corpus.txt"))
  model, vocab = albert_data.train_sentencepiece(corpus, os.path.join(args.out, "spm"))
  mrpc = albert_data.write_mrpc(os.path.join(args.out, "mrpc"),
                                num_train=args.classifier_examples,
                                num_test=args.classifier_examples)
  paragraphs = -(-args.squad_examples // 4)
  squad = albert_data.write_squad_v1(os.path.join(args.out, "squad_train.json"),
                                     num_paragraphs=paragraphs, questions_per_paragraph=4)
  print(json.dumps({"spm_model": str(model), "spm_vocab": str(vocab), "mrpc": str(mrpc),
                    "squad": str(squad), "squad_examples": paragraphs * 4}))
  return 0


def matmul_peak(args):
  import tensorflow as tf

  n = args.n
  dtype = tf.bfloat16 if args.precision == "bf16" else tf.float32
  a = tf.random.uniform((n, n), dtype=tf.float32)
  b = tf.random.uniform((n, n), dtype=tf.float32)
  a, b = tf.cast(a, dtype), tf.cast(b, dtype)

  @tf.function
  def step(x, y):
    return tf.reduce_sum(tf.linalg.matmul(x, y))

  step(a, b).numpy()  # trace and warm up
  step(a, b).numpy()
  times = []
  for _ in range(args.reps):
    start = time.perf_counter()
    step(a, b).numpy()
    times.append(time.perf_counter() - start)
  flop = 2.0 * n ** 3
  record = {"n": n, "reps": args.reps, "precision": args.precision, "times_s": times,
            "gflop_per_s_best": flop / min(times) / 1e9,
            "gflop_per_s_median": flop / sorted(times)[len(times) // 2] / 1e9,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "env": _threads_env()}
  with open(args.json, "w", encoding="utf-8") as f:
    json.dump(record, f)
  print(json.dumps(record))
  return 0


def _rank_and_size():
  for name in ("albert.horovod_helpers", "horovod_helpers"):
    module = sys.modules.get(name)
    if module is not None and hasattr(module, "hvd_rank"):
      try:
        return module.hvd_rank(), module.hvd_size()
      except Exception:  # pylint: disable=broad-except
        pass
  return int(os.environ.get("HOROVOD_RANK", 0)), int(os.environ.get("HOROVOD_SIZE", 1))


def _lazy_profiler_hook(output_dir):
  """tf.compat.v1.train.ProfilerHook, made in begin(), inside the estimator's graph."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  class LazyProfilerHook(tf.compat.v1.train.SessionRunHook):

    def __init__(self):
      self._hook = None

    def begin(self):
      self._hook = tf.compat.v1.train.ProfilerHook(save_steps=3, output_dir=output_dir)
      self._hook.begin()

    def after_create_session(self, session, coord):
      self._hook.after_create_session(session, coord)

    def before_run(self, run_context):
      return self._hook.before_run(run_context)

    def after_run(self, run_context, run_values):
      try:
        self._hook.after_run(run_context, run_values)
      except ValueError:  # a second trace of one global step: keep the first
        pass

    def end(self, session):
      self._hook.end(session)

  return LazyProfilerHook()


_predictions_timed = False


def _timed_predictions(predictions, json_base, script):
  """Yields PREDICTIONS (one per example) and writes the time of each batch to json_base.

  Only the process's first predict() is timed (run_squad_v1.py predicts again with the
  checkpoint it keeps as the best).

  A batch is --predict-batch examples (BENCH_PREDICT_BATCH): the estimator computes a batch,
  then yields its examples one by one, so batch k is done when its first example arrives.
  Step k's duration is the time from batch k-1's to batch k's; step 0's counts from the call
  (graph, session, first batch).
  """
  global _predictions_timed
  if not os.environ.get("BENCH_PREDICT_BATCH") or _predictions_timed:
    yield from predictions
    return
  _predictions_timed = True
  batch = int(os.environ["BENCH_PREDICT_BATCH"])
  wall, cpu = [time.perf_counter()], [time.process_time()]
  count = 0
  try:
    for prediction in predictions:
      if count % batch == 0:
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
      count += 1
      yield prediction
  finally:
    # Also when the caller stops early (run_classifier.py zips the predictions with its
    # examples, and the generator is closed without running out).
    if count % batch:  # a last, partial batch: not a step of the batch size
      wall, cpu = wall[:-1], cpu[:-1]
    rank, size = _rank_and_size()
    record = {"hook": script + " predict", "rank": rank, "size": size, "predictions": count,
              "durations_s": [b - a for a, b in zip(wall, wall[1:])],
              "cpu_s": [b - a for a, b in zip(cpu, cpu[1:])],
              "examples_per_step": batch, "env": _threads_env(), "end_time": time.time(),
              "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    with open(f"{json_base}.rank{rank}", "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")


def _install_timing(json_base, script):
  """Wraps Estimator.train so that its PerfLoggingHook's step times land in json_base, and
  Estimator.predict so that its batch times do."""
  import tensorflow  # noqa: F401  (the estimator package needs TF loaded first)
  from tensorflow_estimator.python.estimator import estimator as estimator_lib
  from tensorflow_estimator.python.estimator.tpu import tpu_estimator

  def wrap_end(hook, origin):
    if getattr(hook, "_bench_wrapped", False):
      return
    hook._bench_wrapped = True
    original_end = hook.end
    original_before, original_after = hook.before_run, hook.after_run
    cpu = []  # process CPU seconds (all threads) when each step ends; [0]: before the first

    def before_run(run_context):
      if not cpu:
        cpu.append(time.process_time())
      return original_before(run_context)

    def after_run(run_context, run_values):
      result = original_after(run_context, run_values)
      cpu.append(time.process_time())
      return result

    hook.before_run, hook.after_run = before_run, after_run

    def end(session):
      original_end(session)
      rank, size = _rank_and_size()
      record = dict(hook.summary())
      record.update({"hook": origin, "rank": rank, "size": size,
                     "durations_s": list(hook._durations),
                     "cpu_s": [b - a for a, b in zip(cpu, cpu[1:])],
                     "examples_per_step": hook._examples_per_step,
                     "env": _threads_env(), "end_time": time.time(),
                     "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})
      with open(f"{json_base}.rank{rank}", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")

    hook.end = end

  def patch(cls):
    original_train = cls.train

    def train(self, input_fn, hooks=None, *args, **kwargs):
      hooks = list(hooks or [])
      found = [h for h in hooks if type(h).__name__ == "PerfLoggingHook"]
      if not found:
        raise SystemExit(f"bench: {script} passed no PerfLoggingHook to train()")
      for h in found:
        wrap_end(h, script)
      profile_dir = os.environ.get("BENCH_PROFILE_DIR")
      if profile_dir:  # for investigations: chrome-trace timelines of every 3rd step
        hooks.append(_lazy_profiler_hook(profile_dir))
      return original_train(self, input_fn, hooks, *args, **kwargs)

    cls.train = train

    original_predict = cls.predict

    def predict(self, input_fn, *args, **kwargs):
      return _timed_predictions(original_predict(self, input_fn, *args, **kwargs),
                                json_base, script)

    cls.predict = predict

  patch(tpu_estimator.TPUEstimator)
  patch(estimator_lib.Estimator)

  # For experiments only (python -m bench --tf-env BENCH_TF_REWRITE=NAME[,NAME]): turn on
  # grappler rewrites, e.g. auto_mixed_precision_onednn_bfloat16, in the session config the
  # estimator makes when the script gives none -- what a patch could add as a flag.
  rewrites = [n for n in os.environ.get("BENCH_TF_REWRITE", "").split(",") if n]
  if rewrites:
    from tensorflow.core.protobuf import rewriter_config_pb2
    from tensorflow_estimator.python.estimator import run_config

    original_config = run_config.get_default_session_config

    def session_config():
      config = original_config()
      for name in rewrites:
        setattr(config.graph_options.rewrite_options, name,
                rewriter_config_pb2.RewriterConfig.ON)
      return config

    run_config.get_default_session_config = session_config


def run(args, script_args):
  tree = os.path.abspath(args.tree)
  script = os.path.join(tree, args.script)
  sys.path.insert(0, tree)
  sys.argv = [script] + script_args
  _install_timing(os.path.abspath(args.json), args.script)
  runpy.run_path(script, run_name="__main__")
  return 0


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  script_args = []
  if "--" in argv:
    cut = argv.index("--")
    argv, script_args = argv[:cut], argv[cut + 1:]
  top = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = top.add_subparsers(dest="mode", required=True)
  data = sub.add_parser("data")
  data.add_argument("--out", required=True)
  data.add_argument("--seq", type=int, default=128)
  data.add_argument("--preds", type=int, default=20)
  data.add_argument("--examples", type=int, default=256)
  data.add_argument("--files", type=int, default=2)
  data.add_argument("--vocab", type=int, default=30000)
  text = sub.add_parser("text")
  text.add_argument("--out", required=True)
  text.add_argument("--classifier-examples", type=int, default=64)
  text.add_argument("--squad-examples", type=int, default=32)
  peak = sub.add_parser("peak")
  peak.add_argument("--json", required=True)
  peak.add_argument("--n", type=int, default=2048)
  peak.add_argument("--reps", type=int, default=8)
  peak.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
  runner = sub.add_parser("run")
  runner.add_argument("--tree", required=True)
  runner.add_argument("--script", default="run_pretraining.py")
  runner.add_argument("--json", required=True)
  args = top.parse_args(argv)
  if args.mode == "data":
    return write_data(args)
  if args.mode == "text":
    return write_text_data(args)
  if args.mode == "peak":
    return matmul_peak(args)
  try:
    return run(args, script_args)
  except SystemExit as e:
    if isinstance(e.code, str):
      print(e.code, file=sys.stderr)
      return 1
    return e.code or 0


if __name__ == "__main__":
  sys.exit(main())
