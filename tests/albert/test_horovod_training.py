"""The three scripts trained by `horovodrun -np 2 --gloo` on the CPU.

The session's tiny data and model (tests/albert/tiny_albert.py).  For each script:
both ranks exit 0; their final variables are bitwise identical (broadcast
of rank 0's initial variables, then averaged gradients); only rank 0 writes
checkpoints and summaries, rank r only its own files in output_dir/r; step
counts and learning rate are as Habana's change list says; evaluation and prediction
happen on rank 0 only; PerfLoggingHook's JSON line matches the steps and
batch size.  A control run without the broadcast hook ends with different
variables, so the comparison can fail.  One more run trains in a single
process with Horovod made unimportable.

Rank 1 saves nothing, so its final variables are observed by running the
script through RECORDING, which adds to Horovod's broadcast hook an `end`
that saves the rank's variables to an .npz file.

Then the cases that once went wrong: an evaluation-only run after training
ends; a run killed between saves resumes from rank 0's checkpoint; with
fewer input files than workers the ranks read disjoint records that
together are the data; and two ranks with batch b train as one process
with batch 2b on the same records.
"""
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

from .tree import run_script

HOROVODRUN = Path(sys.executable).with_name("horovodrun")
LEARNING_RATE = 0.000123

pytestmark = pytest.mark.skipif(not HOROVODRUN.exists(),
                                reason="horovodrun not installed")


def _env():
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
  proc = subprocess.Popen(cmd, env=env or _env(), stdout=subprocess.PIPE,
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
_RECORD_AT_END = """
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
_RUN_SCRIPT = """
sys.argv = sys.argv[2:]
sys.path.insert(0, str(pathlib.Path(sys.argv[0]).parent))
runpy.run_path(sys.argv[0], run_name="__main__")
"""
RECORDING = _RECORD_AT_END + """
hvd.BroadcastGlobalVariablesHook.end = end
""" + _RUN_SCRIPT


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


@pytest.fixture(scope="session")
def data(tiny_data):
  """The session's tiny ALBERT (tests/albert/tiny_albert.py): sp.model, config.json, pre.tfrecord,
  glue/MRPC, SQuAD's train.json and dev.json."""
  return tiny_data["dir"]


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


def pretraining_args(tree, data, out):
  return [tree / "run_pretraining.py", "--use_horovod",
          "--input_file", data / "pre.tfrecord", "--output_dir", out,
          "--albert_config_file", data / "config.json",
          "--max_seq_length", 32, "--max_predictions_per_seq", 5,
          "--train_batch_size", 4, "--num_train_steps", 6,
          "--num_warmup_steps", 2, "--learning_rate", LEARNING_RATE,
          "--save_checkpoints_steps", 100]


@pytest.fixture(scope="module")
def pretraining_out(albert_tree, data, tmp_path_factory):
  """A two-rank pretraining run: (output_dir, recorded variables, log)."""
  tmp = tmp_path_factory.mktemp("pretraining")
  out, record = tmp / "out", tmp / "record"
  log = horovodrun(recording(record) + pretraining_args(albert_tree, data, out)
                   + ["--do_eval", "--max_eval_steps", 2])
  return out, record, log


def test_pretraining_two_ranks(pretraining_out):
  out, record, log = pretraining_out
  # 6 steps and 2 warmup steps over 2 workers: 3 and 1 each.
  assert (out / "model.ckpt-3.index").exists()
  assert not list(out.glob("model.ckpt-6.*"))
  assert_learning_rate(out, 2)
  assert log.count("warmup starts at step 0, for 1 steps") >= 2
  assert_only_rank0_saves(out)
  assert_ranks_identical(record, out / "model.ckpt-3")
  # Rank 0 only evaluates.
  assert (out / "eval_results.txt").exists()
  assert not (out / "1" / "eval_results.txt").exists()
  assert not (out / "1" / "eval").exists()
  assert "Devices:" in log
  assert_perf(out, "run_pretraining", 0, 2, 3, 4)
  assert_perf(out / "1", "run_pretraining", 1, 2, 3, 4)


def without_evaluation(trained, out, *names):
  """A copy of a training run's output_dir less what its evaluation wrote: the files NAMES,
  eval/ and the best checkpoint. An evaluation-only run starts from it."""
  shutil.copytree(trained, out)
  for path in [*(out / name for name in names), *out.glob("model.ckpt-best.*")]:
    path.unlink()
  shutil.rmtree(out / "eval")
  return out


def test_pretraining_eval_only_after_training(albert_tree, data,
                                              pretraining_out, tmp_path):
  """--nodo_train --do_eval with the training run's steps ends."""
  out = without_evaluation(pretraining_out[0], tmp_path / "out", "eval_results.txt")
  horovodrun([sys.executable] + pretraining_args(albert_tree, data, out)
             + ["--nodo_train", "--do_eval", "--max_eval_steps", 2],
             timeout=300)
  results = (out / "eval_results.txt").read_text()
  assert "global_step = 3\n" in results
  assert not (out / "1" / "eval_results.txt").exists()


# Runs a script with Horovod's BroadcastGlobalVariablesHook replaced by a
# hook that only records the rank's variables at the end: each rank keeps
# its own random initialisation.  Each rank also gets an output_dir of its
# own: in one shared directory, a rank that creates its session after rank 0
# saved its step-0 checkpoint restores it, and so starts from rank 0's
# variables after all (as happened under load).  Usage as RECORDING.
WITHOUT_BROADCAST = _RECORD_AT_END + """
import os
class OnlyRecord(tf.compat.v1.train.SessionRunHook):
  def __init__(self, *args, **kwargs):
    pass
  end = end

hvd.BroadcastGlobalVariablesHook = OnlyRecord
_at = sys.argv.index("--output_dir")
sys.argv[_at + 1] += "/rank" + os.environ["HOROVOD_RANK"]
""" + _RUN_SCRIPT


def test_control_without_broadcast_ranks_differ(albert_tree, data, tmp_path):
  out, record = tmp_path / "out", tmp_path / "record"
  horovodrun([sys.executable, "-c", WITHOUT_BROADCAST, record]
             + pretraining_args(albert_tree, data, out))
  a, b = recorded_variables(record, 0), recorded_variables(record, 1)
  assert sorted(a) == sorted(b)
  assert [name for name in a if a[name] != b[name]]


def test_pretraining_resumes_after_a_kill_between_saves(albert_tree, data,
                                                        tmp_path):
  """A run killed while saving resumes from rank 0's last whole checkpoint.

  The first run trains 4 steps a rank and saves every 2.  Then the files
  are made as a kill during the final save leaves them: step 4 half
  written and not in the state file, which still names step 2.  Beside
  them, the per-rank layout of earlier versions: a rank 1 directory one
  save ahead, at step 4.  The rerun trains to step 6, both ranks from step
  2, and ends with identical variables; a rerun of the finished run has
  nothing left to train on any rank.
  """
  out, record = tmp_path / "out", tmp_path / "record"
  args = with_flags(pretraining_args(albert_tree, data, out),
                    num_train_steps=8, save_checkpoints_steps=2)
  horovodrun([sys.executable] + args)
  assert sorted(p.name for p in out.glob("model.ckpt-*.index")) == [
      "model.ckpt-0.index", "model.ckpt-2.index", "model.ckpt-4.index"]
  assert_only_rank0_saves(out)

  (out / "1").mkdir(exist_ok=True)
  for path in out.glob("model.ckpt-4.*"):
    shutil.copy(path, out / "1" / path.name)
  (out / "1" / "checkpoint").write_text(
      'model_checkpoint_path: "model.ckpt-4"\n')
  (out / "model.ckpt-4.index").unlink()
  data_file = out / "model.ckpt-4.data-00000-of-00001"
  data_file.write_bytes(data_file.read_bytes()[:100])
  (out / "checkpoint").write_text(
      'model_checkpoint_path: "model.ckpt-2"\n'
      'all_model_checkpoint_paths: "model.ckpt-0"\n'
      'all_model_checkpoint_paths: "model.ckpt-2"\n')

  log = horovodrun(recording(record) + with_flags(args, num_train_steps=12),
                   timeout=300)
  assert "[0]<stderr>:INFO:tensorflow:Restoring parameters from %s" % (
      out / "model.ckpt-2") in log
  assert "Skipping training" not in log
  # Both ranks trained steps 3 to 6.
  for rank_dir in (out, out / "1"):
    assert perf_records(rank_dir)[-1]["steps"] == 4
  assert_ranks_identical(record, out / "model.ckpt-6")

  log = horovodrun([sys.executable] + with_flags(args, num_train_steps=12),
                   timeout=300)
  for rank in (0, 1):
    assert ("[%d]<stderr>:INFO:tensorflow:Skipping training since max_steps "
            "has already saved" % rank) in log


def write_pretraining_records(path, ids, seq_length=16, predictions=3):
  """One record per id: input_ids start with the id, then 5, 6, 5, 7, ...

  Tokens repeat within a record, so an embedding gradient has duplicate
  rows.  Every position is real and every prediction weighs 1, so each
  example weighs the same in the masked-LM loss.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  def ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  body = [5, 6, 5, 7, 4, 3, 8, 5, 9, 4, 3, 6, 5, 7, 8, 9]
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in ids:
      features = {
          "input_ids": ints([i] + body[:seq_length - 1]),
          "input_mask": ints([1] * seq_length),
          "segment_ids": ints([0] * (seq_length // 2) +
                              [1] * (seq_length - seq_length // 2)),
          "masked_lm_positions": ints([1, 4, 8][:predictions]),
          "masked_lm_ids": ints([10, 11, 10][:predictions]),
          "masked_lm_weights": tf.train.Feature(
              float_list=tf.train.FloatList(value=[1.0] * predictions)),
          "next_sentence_labels": ints([1]),
      }
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=features)).SerializeToString())


# Runs run_pretraining.py's main() with its training input_fn_builder
# wrapped: when main asks for the training input, this rank prints the ids
# (first input_id) of the records that input yields in 400 draws, and stops.
# Shuffling is seeded, so the draws are the same on every run.
READ_TRAINING_INPUT = """
import json, sys
from absl import app
import tensorflow as tf
import run_pretraining
from albert.horovod_helpers import hvd_rank

build_input_fn = run_pretraining.input_fn_builder

def read_and_stop(**kwargs):
  tf.random.set_seed(1)
  input_fn = build_input_fn(**kwargs)
  ids = [int(features["input_ids"][0][0])
         for features in input_fn({"batch_size": 1}).take(400)]
  print("RESULT " + json.dumps({"rank": hvd_rank(), "ids": sorted(set(ids))}))
  sys.exit(0)

run_pretraining.input_fn_builder = read_and_stop
app.run(run_pretraining.main, argv=["run_pretraining"] + sys.argv[1:])
"""


@pytest.mark.parametrize("num_files,workers", [(1, 2), (2, 3)])
def test_fewer_files_than_workers_shard_records(albert_tree, data, tmp_path,
                                                num_files, workers):
  """Ranks read disjoint records that together are every file's records."""
  ids = list(range(100, 131))  # 31 records
  files = []
  for i in range(num_files):
    files.append(tmp_path / ("part%d.tfrecord" % i))
    write_pretraining_records(files[-1], ids[i::num_files])
  env = dict(_env(), PYTHONPATH=str(albert_tree))
  log = horovodrun([sys.executable, "-c", READ_TRAINING_INPUT,
                    "--use_horovod", "--do_train",
                    "--input_file", ",".join(map(str, files)),
                    "--output_dir", tmp_path / "out",
                    "--albert_config_file", data / "config.json",
                    "--max_seq_length", 16, "--max_predictions_per_seq", 3,
                    "--train_batch_size", 1], np=workers, env=env,
                   timeout=300)
  results = [json.loads(line.split("RESULT ", 1)[1])
             for line in log.splitlines() if "RESULT " in line]
  seen = {r["rank"]: set(r["ids"]) for r in results}
  assert sorted(seen) == list(range(workers))
  for rank in range(workers):
    for other in range(rank):
      assert not seen[rank] & seen[other], (rank, other)
  assert set().union(*seen.values()) == set(ids)
  # Sharded by record: the ranks' shares differ by at most one record.
  sizes = sorted(len(s) for s in seen.values())
  assert sizes[-1] - sizes[0] <= 1, sizes


def test_two_ranks_of_batch_b_train_as_one_process_of_batch_2b(
    albert_tree, data, tmp_path):
  """2 ranks x batch 4 end with the variables of 1 process x batch 8.

  Every record is the same, so any batch holds the same examples in both
  runs whatever the order; the tiny config has no dropout; both start from
  one checkpoint.  Under Horovod the scripts multiply the learning rate by
  the number of workers and divide the steps by it, so the one-process run
  gets twice the rate and half the steps: the same schedule.  The model
  and its optimizer slots must agree to rounding.  Clipping by the norm
  TensorFlow takes of the embedding's IndexedSlices instead of the true
  norm made optimizer slots differ by over 50 times the tolerance; with the
  true norm nothing differs by more than a twentieth of it.
  """
  records = tmp_path / "same.tfrecord"
  write_pretraining_records(records, [2] * 64)
  common = ["--input_file", records, "--albert_config_file",
            data / "config.json", "--max_seq_length", 16,
            "--max_predictions_per_seq", 3, "--do_train",
            "--save_checkpoints_steps", 1000]
  script = albert_tree / "run_pretraining.py"
  run_script(albert_tree, "run_pretraining.py", *common,
             "--output_dir", tmp_path / "init", "--train_batch_size", 8,
             "--num_train_steps", 1, "--num_warmup_steps", 0,
             "--learning_rate", 0.01, env=_env())
  init = ["--init_checkpoint", tmp_path / "init" / "model.ckpt-1"]
  run_script(albert_tree, "run_pretraining.py", *common, *init,
             "--output_dir", tmp_path / "one", "--train_batch_size", 8,
             "--num_train_steps", 4, "--num_warmup_steps", 1,
             "--learning_rate", 0.002, env=_env())
  horovodrun([sys.executable, script, "--use_horovod", *common, *init,
              "--output_dir", tmp_path / "two", "--train_batch_size", 4,
              "--num_train_steps", 8, "--num_warmup_steps", 2,
              "--learning_rate", 0.001])
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  one = tf.train.load_checkpoint(str(tmp_path / "one" / "model.ckpt-4"))
  two = tf.train.load_checkpoint(str(tmp_path / "two" / "model.ckpt-4"))
  names = sorted(one.get_variable_to_shape_map())
  assert names == sorted(two.get_variable_to_shape_map())
  assert one.get_tensor("global_step") == two.get_tensor("global_step") == 4
  off = {}
  for name in names:
    a, b = one.get_tensor(name), two.get_tensor(name)
    if a.dtype.kind == "f":
      # Within 1e-4 of the variable's largest value, or 1e-9 for a
      # variable that stays near zero (an attention key bias gets no
      # gradient but rounding).
      tolerance = 1e-4 * np.max(np.abs(a)) + 1e-9
      if np.max(np.abs(a - b)) > tolerance:
        off[name] = float(np.max(np.abs(a - b)) / tolerance)
  assert not off, off


def squad_args(tree, data, out, *extra):
  return [tree / "run_squad_v1.py",
          "--albert_config_file", data / "config.json",
          "--spm_model_file", data / "sp.model",
          "--vocab_file", data / "sp.vocab", "--output_dir", out,
          "--predict_file", data / "dev.json",
          "--predict_feature_file", out / "predict.tf_record",
          "--predict_feature_left_file", out / "predict_left.pkl",
          "--do_predict", "--max_seq_length", 48, "--max_query_length", 12,
          "--doc_stride", 16, "--predict_batch_size", 4, *extra]


@pytest.fixture(scope="module")
def squad_out(albert_tree, data, tmp_path_factory):
  tmp = tmp_path_factory.mktemp("squad")
  out, record = tmp / "out", tmp / "record"
  log = horovodrun(recording(record) + squad_args(
      albert_tree, data, out, "--use_horovod", "--do_train",
      "--train_file", data / "train.json",
      "--train_feature_file", out / "train.tf_record",
      "--train_batch_size", 2, "--num_train_epochs", 1,
      "--learning_rate", LEARNING_RATE, "--save_checkpoints_steps", 100))
  return out, log, record


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


def test_squad_two_ranks(squad_out):
  out, log, record = squad_out
  assert_squad_trained_on_two_ranks(out, log, record)
  # Rank 0 only predicts.
  assert (out / "predictions.json").exists()
  assert not list((out / "1").glob("*predictions.json"))
  assert_perf(out, "run_squad_v1", 0, 2, 5, 2)
  assert_perf(out / "1", "run_squad_v1", 1, 2, 5, 2)


def test_squad_predict_only_single_process(albert_tree, data, squad_out,
                                           tmp_path):
  """Without --do_train or Horovod, predicts from the checkpoints there."""
  out = tmp_path / "out"
  shutil.copytree(squad_out[0], out)
  for path in out.glob("*predictions.json"):
    path.unlink()
  for path in out.glob("model.ckpt-best.*"):
    path.unlink()
  run_script(albert_tree, "run_squad_v1.py",
             *squad_args(albert_tree, data, out)[1:], env=_env())
  assert (out / "predictions.json").exists()
  assert (out / "model.ckpt-best.index").exists()


def classifier_args(tree, data, out, *extra):
  return [tree / "run_classifier.py", "--task_name", "MRPC",
          "--data_dir", data / "glue",
          "--albert_config_file", data / "config.json",
          "--spm_model_file", data / "sp.model",
          "--vocab_file", data / "sp.vocab", "--output_dir", out,
          "--do_train", "--max_seq_length", 32, "--train_batch_size", 4,
          "--train_step", 8, "--warmup_step", 2,
          "--learning_rate", LEARNING_RATE, "--save_checkpoints_steps", 100,
          *extra]


@pytest.fixture(scope="module")
def classifier_out(albert_tree, data, tmp_path_factory):
  """A two-rank MRPC run with evaluation: (output_dir, recorded variables)."""
  tmp = tmp_path_factory.mktemp("classifier")
  out, record = tmp / "out", tmp / "record"
  horovodrun(recording(record) + classifier_args(
      albert_tree, data, out, "--use_horovod", "--do_eval", "--do_predict",
      "--eval_batch_size", 4, "--predict_batch_size", 4))
  return out, record


def test_classifier_two_ranks(classifier_out):
  out, record = classifier_out
  # 8 steps over 2 workers: 4 each.
  assert (out / "model.ckpt-4.index").exists()
  assert_learning_rate(out, 2)
  assert_only_rank0_saves(out)
  assert_ranks_identical(record, out / "model.ckpt-4")
  # 64 training examples, 32 in each rank's own file.
  assert count_records(out / "mrpc_train.tf_record_0") == 32
  assert count_records(out / "mrpc_train.tf_record_1") == 32
  # Rank 0 only evaluates and predicts.
  for name in ("eval_results.txt", "test_results.tsv"):
    assert (out / name).exists()
    assert not (out / "1" / name).exists()
  assert_perf(out, "run_classifier", 0, 2, 4, 4)
  assert_perf(out / "1", "run_classifier", 1, 2, 4, 4)


def test_classifier_eval_only_after_training(albert_tree, data,
                                             classifier_out, tmp_path):
  """--nodo_train --do_eval with the training run's --train_step ends."""
  out = without_evaluation(classifier_out[0], tmp_path / "out", "eval_results.txt",
                           "best_trial.txt", "test_results.tsv")
  args = classifier_args(albert_tree, data, out, "--use_horovod",
                         "--nodo_train", "--do_eval", "--eval_batch_size", 4)
  horovodrun([sys.executable] + args, timeout=300)
  # Rank 0 evaluated the checkpoint of training's last step.
  assert (out / "best_trial.txt").read_text().startswith("4:")
  assert "global_step = 4\n" in (out / "eval_results.txt").read_text()
  assert not (out / "1" / "eval_results.txt").exists()


# Runs a script in a process where `import horovod` fails, as where Horovod
# is not installed.
WITHOUT_HOROVOD = """
import runpy, sys
sys.modules["horovod"] = None
sys.argv = sys.argv[1:]
sys.path.insert(0, str(__import__("pathlib").Path(sys.argv[0]).parent))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_single_process_without_horovod_installed(albert_tree, data,
                                                  tmp_path):
  out = tmp_path / "out"
  args = [str(a) for a in classifier_args(albert_tree, data, out)]
  args[args.index("--train_step") + 1] = "3"
  proc = subprocess.run([sys.executable, "-c", WITHOUT_HOROVOD, *args],
                        env=_env(), capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-8000:]
  assert (out / "model.ckpt-3.index").exists()
  assert not (out / "1").exists()
  assert (out / "mrpc_train.tf_record").exists()
  assert_learning_rate(out, 1)
  assert_perf(out, "run_classifier", 0, 1, 3, 4)
  assert "running without it" in proc.stderr

  # Asking for Horovod there is a one-line error.
  proc = subprocess.run(
      [sys.executable, "-c", WITHOUT_HOROVOD, *args, "--use_horovod",
       "--output_dir", str(tmp_path / "out2")],
      env=_env(), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --use_horovod: cannot import horovod.tensorflow")
