"""The Horovod tests' launcher and checks: `horovodrun -np 2 --gloo` on the CPU, run with its
processes stopped if it hangs; RECORDING, which runs a script with Horovod's broadcast hook given
an `end` that saves the rank's variables to an .npz file (rank 1 saves no checkpoint, so its
final variables are observed that way); and what a two-rank run must leave behind."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

HOROVODRUN = Path(sys.executable).with_name("horovodrun")
LEARNING_RATE = 0.000123

# For each Horovod test file: without horovodrun, its tests are skipped.
needs_horovodrun = pytest.mark.skipif(not HOROVODRUN.exists(), reason="horovodrun not installed")


def run_env():
  """The environment of the runs: one thread each, nothing of an outer Horovod or MPI job."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("HOROVOD_", "OMPI_", "PMI_", "PMIX_"))}
  env.update(OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1",
             TF_NUM_INTRAOP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_DISABLE_SCOPED_ALLOCATOR", None)
  env.pop("HABANA_SYNAPSE_LOGGER", None)
  return env


def _stop(proc):
  """Stops horovodrun and every process it started, by their ids."""
  try:
    children = psutil.Process(proc.pid).children(recursive=True)
  except psutil.NoSuchProcess:
    children = []
  proc.send_signal(signal.SIGTERM)  # horovodrun then stops its ranks
  try:
    proc.communicate(timeout=30)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.communicate()
  for child in children:
    try:
      child.kill()
    except psutil.NoSuchProcess:
      pass


def horovodrun(command, timeout=600, np=2, env=None):
  """Runs `horovodrun -np NP --gloo COMMAND`; returns its output.

  A run that has not ended after `timeout` seconds is stopped with all its
  processes, and the test fails saying so.
  """
  cmd = [str(HOROVODRUN), "-np", str(np), "--gloo", *map(str, command)]
  proc = subprocess.Popen(cmd, env=env or run_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  try:
    stdout, stderr = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    _stop(proc)
    pytest.fail("%s had not ended after %d s" % (" ".join(cmd), timeout))
  output = stdout + stderr
  errors = [line for line in output.splitlines() if "Error" in line]
  assert proc.returncode == 0, "\n".join(errors[:20] + [output[-6000:]])
  return output


# Runs a script with Horovod's BroadcastGlobalVariablesHook given an `end`
# that saves this rank's variables to RECORD_DIR/rank<r>.npz once training
# has ended.  Usage: python -c RECORDING RECORD_DIR SCRIPT ARGS...
RECORD_AT_END = """
import pathlib, runpy, sys
import numpy as np
import tensorflow as tf
import horovod.tensorflow as hvd

record_dir = pathlib.Path(sys.argv[1])

def end(self, session):
  variables = tf.compat.v1.global_variables()
  values = session.run(variables)
  record_dir.mkdir(parents=True, exist_ok=True)
  np.savez(record_dir / ("rank%d.npz" % hvd.rank()),
           **{v.op.name: x for v, x in zip(variables, values)})
"""
RUN_SCRIPT = """
sys.argv = sys.argv[2:]
sys.path.insert(0, str(pathlib.Path(sys.argv[0]).parent))
runpy.run_path(sys.argv[0], run_name="__main__")
"""
RECORDING = RECORD_AT_END + """
hvd.BroadcastGlobalVariablesHook.end = end
""" + RUN_SCRIPT


def recording(record_dir):
  """The command prefix that runs a script through RECORDING."""
  return [sys.executable, "-c", RECORDING, record_dir]


def recorded_variables(record_dir, rank):
  """{name: bytes} of the variables rank `rank` ended training with."""
  with np.load(Path(record_dir) / ("rank%d.npz" % rank)) as values:
    return {name: values[name].tobytes() for name in values.files}


def assert_ranks_identical(record_dir, checkpoint_prefix):
  """Both ranks ended with the variables of rank 0's last checkpoint."""
  rank0 = recorded_variables(record_dir, 0)
  rank1 = recorded_variables(record_dir, 1)
  assert sorted(rank0) == sorted(rank1)
  assert [name for name in rank0 if rank0[name] != rank1[name]] == []
  assert rank0 == variables(checkpoint_prefix)


def assert_only_rank0_saves(out):
  """Checkpoints and event files are in out alone; out/1 has neither."""
  assert (out / "checkpoint").exists()
  assert list(out.glob("events.out.tfevents.*"))
  assert (out / "graph.pbtxt").exists()
  rank1_files = sorted(p.name for p in (out / "1").rglob("*"))
  assert rank1_files == ["perf.jsonl"]


def with_flags(args, **values):
  """args with the value after each --NAME replaced (name_with_underscores)."""
  args = list(args)
  for name, value in values.items():
    args[args.index("--" + name) + 1] = value
  return args


def variables(checkpoint_prefix):
  """{name: bytes} of every variable in a checkpoint."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(str(checkpoint_prefix))
  return {name: reader.get_tensor(name).tobytes()
          for name in reader.get_variable_to_shape_map()}


def count_records(path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return sum(1 for _ in tf.data.TFRecordDataset(str(path)))


def assert_learning_rate(graph_dir, factor):
  """The graph's initial learning rate is LEARNING_RATE * factor (float32)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  graph = (Path(graph_dir) / "graph.pbtxt").read_text()
  def float_val(x):
    return "float_val: %r\n" % float(np.float32(x))
  assert float_val(LEARNING_RATE * factor) in graph
  if factor != 1:
    assert float_val(LEARNING_RATE) not in graph


def perf_records(out_dir):
  lines = (Path(out_dir) / "perf.jsonl").read_text().splitlines()
  return [json.loads(line) for line in lines]


def assert_perf(out_dir, script, rank, size, steps, batch_size):
  [record] = perf_records(out_dir)
  assert (record["script"], record["rank"], record["size"]) == (
      script, rank, size)
  assert record["steps"] == steps
  assert record["examples_per_step"] == batch_size
  assert record["total_examples"] == steps * batch_size
  assert record["total_examples_without_first"] == (steps - 1) * batch_size
  assert record["examples_per_sec"] == pytest.approx(
      steps * batch_size / record["total_time_s"])


def without_evaluation(trained, out, *names):
  """A copy of a training run's output_dir less what its evaluation wrote: the files NAMES,
  eval/ and the best checkpoint. An evaluation-only run starts from it."""
  shutil.copytree(trained, out)
  for path in [*(out / name for name in names), *out.glob("model.ckpt-best.*")]:
    path.unlink()
  shutil.rmtree(out / "eval")
  return out


def assert_squad_trained_on_two_ranks(out, log, record):
  """What a SQuAD script's 2-rank training on 21 examples must leave."""
  # 21 examples / (2 per worker * 2 workers) = 5 steps.
  assert (out / "model.ckpt-5.index").exists()
  assert_learning_rate(out, 2)
  assert_only_rank0_saves(out)
  assert_ranks_identical(record, out / "model.ckpt-5")
  # Each rank wrote its own slice, 11 and 10 examples, to its own file.
  assert not (out / "train.tf_record").exists()
  assert count_records(out / "train.tf_record_0") > 0
  assert count_records(out / "train.tf_record_1") > 0
  assert "[0]<stderr>:INFO:tensorflow:  Num orig examples = 11\n" in log
  assert "[1]<stderr>:INFO:tensorflow:  Num orig examples = 10\n" in log


# Horovod workers: a tiny model trains through create_optimizer with AdamW or
# LAMB, fp16 loss scaling and --num_accumulation_steps=argv[1], each update
# taking that many micro-batches; then an update one of whose micro-batches
# (the first) has an infinite loss on rank 1 alone must leave every variable
# of both ranks as it was and halve the loss scale, the global step counting
# it all the same; training then goes on. Prints RESULT and a JSON per rank.
LOSS_SCALING = """
import json, sys
import numpy as np
import tensorflow as tf
from absl import flags
from albert import optimization
from albert.horovod_helpers import hvd, hvd_init, hvd_rank
from albert.loss_scaling import enable_loss_scaling
accumulate = int(sys.argv[1])
flags.FLAGS(["loss_scaling", "--num_accumulation_steps=%d" % accumulate])
tf.compat.v1.disable_eager_execution()
hvd_init()
enable_loss_scaling()
data = np.random.RandomState(hvd_rank()).rand(8, 4).astype("float32")
results = {"rank": hvd_rank()}
for optimizer in ("adamw", "lamb"):
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(1)
    blow_up = tf.compat.v1.placeholder_with_default(1.0, [])
    w = tf.compat.v1.get_variable("w", [4, 1])
    loss = tf.reduce_mean(tf.square(tf.matmul(data, w) - 1.0))
    if hvd_rank() == 1:
      loss *= blow_up
    train = optimization.create_optimizer(loss, 1e-2, 100, 0, False,
                                          optimizer=optimizer)
    step = tf.compat.v1.train.get_global_step()
    scales = [v for v in tf.compat.v1.global_variables()
              if "loss_scale" in v.name and "good_steps" not in v.name]

    def update(session, first_blow_up=1.0):
      losses = [session.run([train, loss], {blow_up: first_blow_up})[1]]
      losses += [session.run([train, loss])[1] for _ in range(accumulate - 1)]
      return losses[0]

    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.local_variables_initializer()])
      session.run(hvd.broadcast_global_variables(0))
      start_scale = session.run(scales[0])
      losses = [update(session) for _ in range(5)]
      before = session.run(w)
      update(session, np.inf)
      after, scale, global_step = session.run([w, scales[0], step])
      update(session)
      final = session.run(w)
  results[optimizer] = {
      "scale_variables": len(scales), "start_scale": float(start_scale),
      "loss_falls": bool(losses[-1] < losses[0]),
      "skipped": bool(np.array_equal(before, after)),
      "trains_on": bool(not np.array_equal(after, final)),
      "scale_after_overflow": float(scale), "global_step": int(global_step),
      "weights": final.tolist()}
print("RESULT " + json.dumps(results))
"""


def assert_loss_scaling_skips_overflows(tree, accumulate):
  """Runs LOSS_SCALING on two ranks: both skip the overflowing update alike."""
  env = dict(run_env(), PYTHONPATH=str(tree))
  env.pop("TF_BF16_CONVERSION", None)
  proc = subprocess.run([str(HOROVODRUN), "-np", "2", "--gloo", sys.executable, "-c",
                         LOSS_SCALING, str(accumulate)], env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  ranks = sorted((json.loads(line.split("RESULT ", 1)[1])
                  for line in proc.stdout.splitlines() if "RESULT " in line),
                 key=lambda r: r["rank"])
  assert [r["rank"] for r in ranks] == [0, 1]
  # Five updates and the skipped one: the global step counts updates.
  expected = {"scale_variables": 1, "start_scale": 2.0 ** 15,
              "loss_falls": True, "skipped": True, "trains_on": True,
              "scale_after_overflow": 2.0 ** 14, "global_step": 6}
  for optimizer in ("adamw", "lamb"):
    for r in ranks:
      got = dict(r[optimizer])
      del got["weights"]
      assert got == expected, (optimizer, r["rank"])
    # The same update on both ranks: the gradients were averaged first.
    assert ranks[0][optimizer]["weights"] == ranks[1][optimizer]["weights"]
