"""run_pretraining.py trained by `horovodrun -np 2 --gloo` on the CPU.

The session's tiny data and model (tests/albert/tiny_albert.py): both ranks exit 0; their final
variables are bitwise identical (broadcast of rank 0's initial variables, then averaged
gradients); only rank 0 writes checkpoints and summaries, rank r only its own files in
output_dir/r; step counts and learning rate are as Habana's change list says; evaluation happens
on rank 0 only; PerfLoggingHook's JSON line matches the steps and batch size. A control run
without the broadcast hook ends with different variables, so the comparison can fail.

Then the cases that once went wrong: an evaluation-only run after training ends; a run killed
between saves resumes from rank 0's checkpoint; with fewer input files than workers the ranks
read disjoint records that together are the data; and two ranks with batch b train as one
process with batch 2b on the same records.
"""
import json
import shutil
import sys

import pytest

from .horovod_runs import (LEARNING_RATE, RECORD_AT_END, RUN_SCRIPT, assert_learning_rate,
                           assert_only_rank0_saves, assert_perf, assert_ranks_identical,
                           horovodrun, needs_horovodrun, perf_records, recorded_variables,
                           recording, run_env, with_flags, without_evaluation)
from .tiny_albert import checkpoint_differences, write_pretraining_records
from .tree import run_script

pytestmark = needs_horovodrun


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
WITHOUT_BROADCAST = RECORD_AT_END + """
import os
class OnlyRecord(tf.compat.v1.train.SessionRunHook):
  def __init__(self, *args, **kwargs):
    pass
  end = end

hvd.BroadcastGlobalVariablesHook = OnlyRecord
_at = sys.argv.index("--output_dir")
sys.argv[_at + 1] += "/rank" + os.environ["HOROVOD_RANK"]
""" + RUN_SCRIPT


@pytest.mark.long
def test_control_without_broadcast_ranks_differ(albert_tree, data, tmp_path):
  out, record = tmp_path / "out", tmp_path / "record"
  horovodrun([sys.executable, "-c", WITHOUT_BROADCAST, record]
             + pretraining_args(albert_tree, data, out))
  a, b = recorded_variables(record, 0), recorded_variables(record, 1)
  assert sorted(a) == sorted(b)
  assert [name for name in a if a[name] != b[name]]


@pytest.mark.long
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
  env = dict(run_env(), PYTHONPATH=str(albert_tree))
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
             "--learning_rate", 0.01, env=run_env())
  init = ["--init_checkpoint", tmp_path / "init" / "model.ckpt-1"]
  run_script(albert_tree, "run_pretraining.py", *common, *init,
             "--output_dir", tmp_path / "one", "--train_batch_size", 8,
             "--num_train_steps", 4, "--num_warmup_steps", 1,
             "--learning_rate", 0.002, env=run_env())
  horovodrun([sys.executable, script, "--use_horovod", *common, *init,
              "--output_dir", tmp_path / "two", "--train_batch_size", 4,
              "--num_train_steps", 8, "--num_warmup_steps", 2,
              "--learning_rate", 0.001])
  # Within 1e-4 of the variable's largest value, or 1e-9 for a variable that
  # stays near zero (an attention key bias gets no gradient but rounding).
  off = checkpoint_differences(tmp_path / "one" / "model.ckpt-4",
                               tmp_path / "two" / "model.ckpt-4", 1e-4, 1e-9)
  assert not off, off
