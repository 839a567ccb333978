"""--num_accumulation_steps: N micro-batches of b train as one batch of N·b.

From one initial checkpoint, on the same records in the same order (--seed), run_pretraining.py
with batch 8 and with 4 micro-batches of 2 must end UPDATES updates later with the same
variables and optimizer slots, for AdamW and LAMB, in one process and under `horovodrun -np 2`.
The tolerance is float32 rounding: a mean of four micro-batch means sums the same numbers in
another order (each sum rounds at 2^-24, about 6e-8), and Adam's division by the square root
of a small second moment enlarges that where a gradient nearly cancels. Measured: at most
1.1e-5 of a variable's largest magnitude (the word embeddings, two ranks, AdamW), 1.5e-6 in
one process. The test allows 1e-4, as the two-rank test of test_horovod_pretraining.py does,
plus 1e-9 for variables that stay near zero (an attention key bias gets no gradient). Adam's
and LAMB's updates hardly change when all gradients scale, but their slots m and v, compared
too, do: a sum in place of a mean puts m 4 times off. The masked-LM loss is
normalised by the masked tokens of a batch, so the records all weigh the same
(write_pretraining_records); with records that weigh differently the two runs differ by
design, as they would in any accumulation that averages micro-batch losses.

Under Horovod the timeline counts one allreduce per variable per update, whatever N. Loss
scaling skips an update with an overflow in one micro-batch of one rank, on both ranks. bf16
trains with accumulation where the CPU has AVX-512.
"""
import json
import re
import subprocess
import sys

import pytest

from .horovod_runs import (HOROVODRUN, assert_loss_scaling_skips_overflows, horovodrun,
                           needs_horovodrun, perf_records, run_env)
from .tiny_albert import checkpoint_differences, write_pretraining_records
from .tree import cpu_has_avx512, run_script

UPDATES = 3
BATCH = 8
MICRO_BATCH, ACCUMULATE = 2, 4
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 1e-4, 1e-9
# The tiny config's trainable variables: each is allreduced once per update.
TRAINABLE_VARIABLES = 32


@pytest.fixture(scope="module")
def start(albert_tree, data, tmp_path_factory):
  """Distinct records of equal weight, and a checkpoint after one step on them."""
  tmp = tmp_path_factory.mktemp("accumulation")
  records = tmp / "records.tfrecord"
  write_pretraining_records(records, list(range(10, 74)))
  common = ["--input_file", records, "--albert_config_file", data / "config.json",
            "--max_seq_length", 16, "--max_predictions_per_seq", 3, "--do_train",
            "--save_checkpoints_steps", 1000, "--seed", 3]
  run_script(albert_tree, "run_pretraining.py", *common, "--output_dir", tmp / "init",
             "--train_batch_size", BATCH, "--num_train_steps", 1, env=run_env())
  return common + ["--init_checkpoint", tmp / "init" / "model.ckpt-1",
                   "--learning_rate", 0.005, "--num_warmup_steps", 1]


def pretrain(tree, start, out, optimizer, batch, accumulate, ranks=1, env=None):
  """run_pretraining.py for UPDATES updates of batch x accumulate (per rank); its log."""
  args = [*start, "--output_dir", out, "--optimizer", optimizer,
          "--train_batch_size", batch, "--num_accumulation_steps", accumulate,
          # Under Horovod the script divides the steps by the number of ranks.
          "--num_train_steps", UPDATES * ranks]
  if ranks == 1:
    return run_script(tree, "run_pretraining.py", *args, env=env or run_env()).stderr
  return horovodrun([sys.executable, tree / "run_pretraining.py", "--use_horovod", *args],
                    env=env)


def assert_same_training(one, accumulated):
  off = checkpoint_differences(one / ("model.ckpt-%d" % UPDATES),
                               accumulated / ("model.ckpt-%d" % UPDATES),
                               RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE)
  assert not off, off
  # Checkpoints count updates; the accumulated run took ACCUMULATE micro-batches for each.
  assert sorted(p.name for p in accumulated.glob("model.ckpt-*.index")) == [
      "model.ckpt-0.index", "model.ckpt-%d.index" % UPDATES]
  micro_batches, = [record["steps"] for record in perf_records(accumulated)]
  assert micro_batches == UPDATES * ACCUMULATE


@pytest.mark.parametrize("optimizer", ["adamw", pytest.param("lamb", marks=pytest.mark.long)])
def test_micro_batches_train_as_one_batch(albert_tree, start, optimizer, tmp_path):
  pretrain(albert_tree, start, tmp_path / "one", optimizer, BATCH, 1)
  log = pretrain(albert_tree, start, tmp_path / "accumulated", optimizer, MICRO_BATCH,
                 ACCUMULATE)
  assert_same_training(tmp_path / "one", tmp_path / "accumulated")
  assert "Effective batch size = 8 (2 a micro-batch x 4 accumulated x 1 workers)" in log


def allreduces(timeline):
  """How many tensors Horovod's timeline says were allreduced."""
  text = timeline.read_text().rstrip().rstrip(",")
  events = json.loads(text if text.endswith("]") else text + "]")
  return sum(1 for e in events if e.get("ph") == "B" and e.get("name") == "ALLREDUCE")


@needs_horovodrun
@pytest.mark.parametrize("optimizer", ["adamw", pytest.param("lamb", marks=pytest.mark.long)])
def test_two_ranks_allreduce_once_per_update(albert_tree, start, optimizer, tmp_path):
  counts = {}
  for name, batch, accumulate in (("one", BATCH, 1),
                                  ("accumulated", MICRO_BATCH, ACCUMULATE)):
    timeline = tmp_path / (name + ".json")
    log = pretrain(albert_tree, start, tmp_path / name, optimizer, batch, accumulate,
                   ranks=2, env=dict(run_env(), HOROVOD_TIMELINE=str(timeline)))
    counts[name] = allreduces(timeline)
  assert_same_training(tmp_path / "one", tmp_path / "accumulated")
  assert "Effective batch size = 16 (2 a micro-batch x 4 accumulated x 2 workers)" in log
  assert counts == {"one": TRAINABLE_VARIABLES * UPDATES,
                    "accumulated": TRAINABLE_VARIABLES * UPDATES}


# create_optimizer on a linear model, in one process or on each Horovod rank:
# UPDATES updates of 8 examples each, given as N micro-batches of 8 / N; prints
# every global variable (weights, AdamW's or LAMB's slots, the global step).
# The gradients stay below the clipping norm, so, unlike in ALBERT's first
# steps, clipping does not hide a sum in place of a mean.
LINEAR_MODEL = """
import json, sys
import numpy as np
import tensorflow as tf
from absl import flags
from albert import optimization
from albert.horovod_helpers import hvd, hvd_init, hvd_rank
accumulate, updates, horovod = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "hvd"
flags.FLAGS(["linear", "--num_accumulation_steps=%d" % accumulate])
tf.compat.v1.disable_eager_execution()
if horovod:
  hvd_init()
data = 0.1 * np.random.RandomState(7 + hvd_rank()).rand(updates * 8, 4)
results = {"rank": hvd_rank()}
for optimizer in ("adamw", "lamb"):
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, 4])
    w = tf.compat.v1.get_variable(
        "w", [4, 1], initializer=tf.compat.v1.constant_initializer(0.5))
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 1.0))
    train = optimization.create_optimizer(loss, 1e-2, 100, 2, False,
                                          optimizer=optimizer)
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.local_variables_initializer()])
      for batch in np.split(data, updates * accumulate):
        session.run(train, {x: batch})
      results[optimizer] = {v.op.name: session.run(v).tolist()
                            for v in tf.compat.v1.global_variables()}
print("RESULT " + json.dumps(results))
"""


def linear_model(tree, accumulate, ranks):
  """LINEAR_MODEL's variables per rank, trained with `accumulate` micro-batches."""
  env = dict(run_env(), PYTHONPATH=str(tree))
  command = [sys.executable, "-c", LINEAR_MODEL, str(accumulate), str(UPDATES)]
  if ranks > 1:
    command = [str(HOROVODRUN), "-np", str(ranks), "--gloo", *command, "hvd"]
  else:
    command.append("single")
  proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  results = [json.loads(line.split("RESULT ", 1)[1])
             for line in proc.stdout.splitlines() if "RESULT " in line]
  return sorted(results, key=lambda r: r["rank"])


@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=needs_horovodrun)])
def test_accumulated_mean_is_the_batch_gradient(albert_tree, ranks):
  import numpy as np  # pylint: disable=import-outside-toplevel
  one, accumulated = linear_model(albert_tree, 1, ranks), linear_model(albert_tree, 4, ranks)
  assert len(one) == len(accumulated) == ranks
  for a, b in zip(one, accumulated):
    for optimizer in ("adamw", "lamb"):
      assert sorted(a[optimizer]) == sorted(b[optimizer])
      assert a[optimizer]["global_step"] == b[optimizer]["global_step"] == UPDATES
      for name, value in a[optimizer].items():
        np.testing.assert_allclose(b[optimizer][name], value, rtol=1e-5, atol=1e-9,
                                   err_msg="%s %s" % (optimizer, name))


@needs_horovodrun
def test_an_overflow_in_one_micro_batch_skips_the_update_on_every_rank(albert_tree):
  assert_loss_scaling_skips_overflows(albert_tree, 2)


@pytest.mark.skipif(not cpu_has_avx512(), reason="--precision=bf16 needs AVX-512")
def test_bf16_trains_with_accumulation(albert_tree, start, tmp_path):
  out = tmp_path / "bf16"
  log = run_script(albert_tree, "run_pretraining.py", *start, "--output_dir", out,
                   "--train_batch_size", MICRO_BATCH, "--num_accumulation_steps",
                   ACCUMULATE, "--num_train_steps", UPDATES, "--precision", "bf16",
                   env=run_env()).stderr
  assert (out / ("model.ckpt-%d.index" % UPDATES)).exists()
  loss = float(re.findall(r"Loss for final step: ([-\d.e+na]+)", log)[-1])
  assert loss == loss and loss < 100, log[-3000:]
