"""The scripts learn: metrics they report themselves, far above chance.

One chain, built once per session: sentencepiece model -> pretraining data ->
run_pretraining.py -> run_classifier.py (MRPC, STS-B), run_squad_v1.py,
run_squad_v2.py and run_race.py from the pretraining checkpoint, on the
generated tasks of tools/albert_data.py, whose labels can only be told by
reading the input. MRPC and SQuAD v1 also run with --precision=bf16, which
must reach the fp32 metric within a tolerance. Each test reads the metric the
script wrote (eval_results.txt, or squad_v2_eval.json) and compares it with a
threshold set, with margin, below what repeated runs reached on a loaded 2-core
machine, and far above chance; the message names both. The same pretraining and MRPC
fine-tuning under `horovodrun -np 2 --gloo` must reach the 1-process figures
within a small tolerance. MRPC fine-tunes from the pretraining checkpoint as a
user gets a released model: packed in the released archives' layout, served
from 127.0.0.1 and fetched with download_pretrained.py, then taken to
HuggingFace's format and back with convert_huggingface.py (bitwise); the
fine-tuned classifier exported to HuggingFace predicts the dev set as
run_classifier.py --do_predict does, in transformers.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import albert_data
from .hf_oracle import convert, hf_env, record_input_ids  # noqa: F401 (hf_env: a fixture)
from .released_models import ArchiveServer, pack_released
from .tree import cpu_has_avx512, run_script, run_scripts

HOROVODRUN = Path(sys.executable).with_name("horovodrun")

pytestmark = pytest.mark.learning

SEED = 0
SEQ = 32
MAX_PRED = 5
MODEL = dict(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
             embedding_size=32, max_position_embeddings=64)
PRETRAIN_STEPS = 1500
PRETRAIN_BATCH = 32
PRETRAIN_LEARNING_RATE = 1e-2
FINETUNE_BATCH = 32
# (steps, learning rate) of each run_classifier.py task.
MRPC_TRAINING = (2000, 5e-4)
STSB_TRAINING = (3000, 3e-4)
NUM_TRAIN = 2000
NUM_DEV = 200
SQUAD_PARAGRAPHS = 300
SQUAD_DEV_PARAGRAPHS = 50
SQUAD_EPOCHS = 40
SQUAD_LEARNING_RATE = 3e-4
SQUAD_V2_PARAGRAPHS = 300
SQUAD_V2_DEV_PARAGRAPHS = 60
SQUAD_V2_EPOCHS = 15
SQUAD_V2_LEARNING_RATE = 3e-4
RACE_ARTICLES = 300
RACE_DEV_ARTICLES = 60
RACE_TRAINING = (800, 1e-3)  # (steps, learning rate)

# Thresholds, and (in brackets) what runs of this chain reached on a shared
# 2-core machine under a load of 7 to 11: held-out masked-LM accuracy
# (0.42, 0.43, 0.44, 0.44, 0.46, 0.39, 0.43, 0.41; unigram baseline 0.17)
# and sentence-order accuracy (0.78, 0.79, 0.84, 0.95, 0.83, 0.81, 0.70,
# 0.90); MRPC accuracy (0.985, 0.985, 0.985, 0.985, 1.0, 0.995, and 0.805 in
# one demo run); STS-B Pearson (0.72, 0.73, 0.77, 0.86 from one checkpoint,
# idle; the task whose score counted only shared names got stuck below 0.35
# in 3 runs of 7); SQuAD exact match (100, 100, 100, 100). SQuAD 2.0 exact
# after 10 epochs (99.4, 96.1, 98.9, 99.4, 90.0, 86.1, 98.9, 91.1, 97.8, 73.9;
# load 4 to 7), hence 15 now (98.9). RACE accuracy after 800 steps at 1e-3
# (one thread, load 1 to 6), from four pretraining checkpoints: 0.99, 1.0,
# 0.96, 0.95 from an earlier run's; 0.99, 0.98, 1.0 from one on a corpus of
# another seed; 0.99 and 0.97 in two runs of the chain itself. Each was past
# 0.92 by step 400; a run of 600 steps reached 0.92. The untrained head: 0.2
# to 0.32 at step 0, 0.2 after 600 steps at rate 0. Hence a threshold of 0.7.
# When the right option shared only a thing with the article, runs of one
# setting reached 0.31 to 1.0; only an action and a thing, 0.64 to 1.0 (see
# write_race): the matching was learnt abruptly or not at all.
MLM_ACCURACY = 0.3
SOP_ACCURACY = 0.65
MRPC_ACCURACY = 0.75
STSB_PEARSON = 0.5
SQUAD_EXACT_MATCH = 80.0
SQUAD_V2_EXACT = 70.0
RACE_ACCURACY = 0.7
# How far a 2-process run of the same optimisation (on_two_ranks) may fall
# below the 1-process one. Every run of the chain has --seed, but that does not
# make the 1-process pretraining repeat: it runs on two threads, whose sums
# and updates do not come in a fixed order (test_seed.py's bitwise runs use
# one). Its held-out masked-LM accuracy, same seed, same machine, six runs of
# 2026-12-07 (three of them under load): 0.449, 0.437, 0.473, 0.431, 0.450,
# 0.464; the 2-rank run beside each: 0.447, 0.439, 0.432, 0.439, 0.429, 0.441.
# 2 ranks minus 1 process: -0.002, +0.002, -0.041 (a CI-like run, which failed
# the former tolerance of 0.03), +0.008, -0.020, -0.023, and +0.016 in an
# earlier session; hence 0.06. MRPC accuracy -0.015 (0.975, 0.99);
# unseeded runs of 1 process spread by 0.02 in it, but for one run of 0.805.
# Sentence-order accuracy spreads from 0.70 to 0.95 between seeds, and a CPU
# that rounds differently draws another run, so it is held to its threshold
# (SOP_ACCURACY) alone.
TWO_RANK_TOLERANCE = {"masked_lm_accuracy": 0.06, "eval_accuracy": 0.05}
# The accuracy guard of --precision=bf16 (oneDNN's auto mixed precision, on
# CPUs with AVX-512): MRPC and SQuAD v1 fine-tuned in bf16 from the same
# checkpoint, which may fall this far below the fp32 runs. MRPC's is the
# spread between fp32 runs (above); SQuAD exact match is 100 in every fp32
# run. Measured in bf16: MRPC accuracy 0.985, 0.975 (from one checkpoint) and
# 0.98 (fp32 0.995 beside it), SQuAD exact match 100 (fp32 100).
BF16_TOLERANCE = {"eval_accuracy": 0.2, "exact_match": 10.0}
BF16_TASKS = ("mrpc", "squad")


def _env(threads=None):
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("HOROVOD_", "OMPI_", "PMI_", "PMIX_"))}
  env.pop("PYTHONPATH", None)
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  if threads:
    env.update(OMP_NUM_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads),
               TF_NUM_INTRAOP_THREADS=str(threads))
  return env


def run(tree, script, *args):
  return run_script(tree, script, *args, env=_env(), timeout=1800)


def horovodrun(tree, script, *args):
  """`horovodrun -np 2 --gloo python TREE/SCRIPT --use_horovod ARGS`."""
  cmd = [str(HOROVODRUN), "-np", "2", "--gloo", sys.executable,
         str(tree / script), "--use_horovod", *map(str, args)]
  proc = subprocess.run(cmd, env=_env(threads=1), capture_output=True,
                        text=True, timeout=1800)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-8000:]
  return proc


def eval_blocks(path):
  """eval_results.txt as a list of {key: value}, one per evaluation."""
  blocks, current = [], {}
  for line in Path(path).read_text().splitlines():
    match = re.match(r"^(\w+) = (-?[\d.eE+-]+|nan|inf)$", line.strip())
    if match:
      current[match.group(1)] = float(match.group(2))
    if line.startswith("=" * 10) and current:
      blocks.append(current)
      current = {}
  if current:
    blocks.append(current)
  return blocks


def at_step(path, step):
  """The evaluation of the checkpoint of global step STEP."""
  found = [b for b in eval_blocks(path) if b.get("global_step") == step]
  assert found, (step, Path(path).read_text()[-3000:])
  return found[-1]


# ---- the chain -----------------------------------------------------------


@pytest.fixture(scope="session")
def learn_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("learn")


@pytest.fixture(scope="session")
def learn_data(albert_tree, learn_dir):
  """Corpus, held-out corpus, sentencepiece model, config, pretraining data."""
  d = learn_dir
  corpus = albert_data.write_corpus(d / "corpus.txt", seed=SEED)
  heldout = albert_data.write_corpus(d / "heldout.txt", num_docs=40,
                                     seed=SEED + 100)
  model, vocab = albert_data.train_sentencepiece(corpus, d / "spm")
  vocab_size = len(vocab.read_text(encoding="utf-8").splitlines())
  config = albert_data.write_albert_config(d / "albert_config.json",
                                           vocab_size, **MODEL)
  for source, name, dupe in ((corpus, "train", 5), (heldout, "heldout", 1)):
    run(albert_tree, "create_pretraining_data.py",
        "--input_file=%s" % source, "--output_file=%s" % (d / (name + ".tfrecord")),
        "--vocab_file=%s" % vocab, "--spm_model_file=%s" % model,
        "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % MAX_PRED,
        "--dupe_factor=%d" % dupe, "--random_seed=%d" % (SEED + 1))
  return dict(dir=d, spm_model=model, spm_vocab=vocab, config=config,
              train=d / "train.tfrecord", heldout=d / "heldout.tfrecord")


def pretraining_args(data, out, steps, batch, learning_rate):
  return ["--input_file=%s" % data["train"], "--output_dir=%s" % out,
          "--albert_config_file=%s" % data["config"], "--do_train",
          "--train_batch_size=%d" % batch,
          "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % MAX_PRED,
          "--optimizer=lamb", "--learning_rate=%g" % learning_rate,
          "--num_train_steps=%d" % steps, "--num_warmup_steps=%d" % (steps // 10),
          "--save_checkpoints_steps=%d" % steps, "--seed=%d" % SEED]


def heldout_eval(tree, data, checkpoint, out):
  """run_pretraining.py --do_eval of CHECKPOINT on the held-out corpus.

  The script evaluates the newest checkpoint of its --output_dir, so OUT gets
  a copy of CHECKPOINT; its eval_results.txt is returned, parsed.
  """
  out.mkdir(parents=True)
  for path in checkpoint.parent.glob(checkpoint.name + ".*"):
    shutil.copy(path, out)
  (out / "checkpoint").write_text('model_checkpoint_path: "%s"\n' % checkpoint.name)
  step = int(checkpoint.name.split("-")[-1])
  run(tree, "run_pretraining.py", "--input_file=%s" % data["heldout"],
      "--output_dir=%s" % out, "--albert_config_file=%s" % data["config"],
      "--do_eval", "--eval_batch_size=32", "--max_seq_length=%d" % SEQ,
      "--max_predictions_per_seq=%d" % MAX_PRED, "--num_train_steps=%d" % step,
      "--max_eval_steps=20")
  return eval_blocks(out / "eval_results.txt")[-1]


@pytest.fixture(scope="session")
def pretrained(albert_tree, learn_data):
  out = learn_data["dir"] / "pretrain"
  run(albert_tree, "run_pretraining.py",
      *pretraining_args(learn_data, out, PRETRAIN_STEPS, PRETRAIN_BATCH,
                        PRETRAIN_LEARNING_RATE))
  checkpoint = out / ("model.ckpt-%d" % PRETRAIN_STEPS)
  results = heldout_eval(albert_tree, learn_data, checkpoint,
                         learn_data["dir"] / "pretrain_eval")
  return dict(checkpoint=checkpoint, results=results, out=out)


def fine_tuning_args(data, checkpoint):
  return ["--albert_config_file=%s" % data["config"],
          "--vocab_file=%s" % data["spm_vocab"],
          "--spm_model_file=%s" % data["spm_model"],
          "--init_checkpoint=%s" % checkpoint, "--do_lower_case", "--seed=%d" % SEED]


def classifier_args(data, checkpoint, task, data_dir, out, training,
                    batch=FINETUNE_BATCH):
  steps, learning_rate = training
  return [*fine_tuning_args(data, checkpoint),
          "--task_name=%s" % task, "--data_dir=%s" % data_dir,
          "--output_dir=%s" % out, "--do_train", "--do_eval",
          "--max_seq_length=%d" % SEQ, "--train_batch_size=%d" % batch,
          "--eval_batch_size=40", "--learning_rate=%g" % learning_rate,
          "--train_step=%d" % steps, "--warmup_step=%d" % (steps // 10),
          "--save_checkpoints_steps=%d" % steps]


@pytest.fixture(scope="session")
def mrpc_data(learn_data):
  return albert_data.write_mrpc(learn_data["dir"] / "glue_mrpc",
                                num_train=NUM_TRAIN, num_dev=NUM_DEV,
                                seed=SEED + 1)


def squad_args(data, checkpoint, name, train, dev, max_query_length, learning_rate,
               epochs):
  """run_squad_v1.py's or run_squad_v2.py's flags: train on TRAIN, then predict DEV."""
  d = data["dir"]
  return [*fine_tuning_args(data, checkpoint),
          "--output_dir=%s" % (d / name), "--train_file=%s" % train,
          "--predict_file=%s" % dev,
          "--train_feature_file=%s" % (d / (name + "_train.tfrecord")),
          "--predict_feature_file=%s" % (d / (name + "_dev.tfrecord")),
          "--predict_feature_left_file=%s" % (d / (name + "_dev_left")),
          "--do_train", "--do_predict", "--max_seq_length=48", "--doc_stride=32",
          "--max_query_length=%d" % max_query_length, "--max_answer_length=4",
          "--train_batch_size=32", "--predict_batch_size=32",
          "--learning_rate=%g" % learning_rate, "--num_train_epochs=%d" % epochs,
          "--save_checkpoints_steps=100000"]


def race_args(data, checkpoint, race_dir, out, training):
  """run_race.py's flags: train on RACE_DIR's train split, evaluate on dev.

  An article (18 pieces) and an option (6) fit SEQ with [CLS] and two
  [SEP]s, so nothing is truncated.
  """
  steps, learning_rate = training
  d = data["dir"]
  return [*fine_tuning_args(data, checkpoint),
          "--data_dir=%s" % race_dir, "--output_dir=%s" % out,
          "--train_file=%s" % (d / "race_train.tfrecord"),
          "--eval_file=%s" % (d / "race_dev.tfrecord"),
          "--do_train", "--do_eval", "--max_seq_length=%d" % SEQ,
          "--max_qa_length=8", "--train_batch_size=%d" % FINETUNE_BATCH,
          "--eval_batch_size=36", "--learning_rate=%g" % learning_rate,
          "--train_step=%d" % steps, "--warmup_step=%d" % (steps // 10),
          "--save_checkpoints_steps=%d" % steps]


def fine_tuning_runs(data, checkpoint, mrpc_data):
  """{task: (script, flags)}: each fine-tuning task, from CHECKPOINT; in bf16 too
  where the CPU can."""
  d = data["dir"]
  stsb_data = albert_data.write_stsb(d / "glue_stsb", num_train=NUM_TRAIN,
                                     num_dev=NUM_DEV, seed=SEED + 3)
  squad_files = (
      albert_data.write_squad_v1(d / "squad_train.json", num_paragraphs=SQUAD_PARAGRAPHS,
                                 seed=SEED + 2, questions_per_paragraph=4),
      albert_data.write_squad_v1(d / "squad_dev.json", num_paragraphs=SQUAD_DEV_PARAGRAPHS,
                                 seed=SEED + 5, prefix="dev", questions_per_paragraph=4))
  squad_v2_files = (
      albert_data.write_squad_v2(d / "squad2_train.json",
                                 num_paragraphs=SQUAD_V2_PARAGRAPHS, seed=SEED + 6),
      albert_data.write_squad_v2(d / "squad2_dev.json",
                                 num_paragraphs=SQUAD_V2_DEV_PARAGRAPHS, seed=SEED + 9,
                                 prefix="dev"))
  race_data = albert_data.write_race(d / "race_data", num_train=RACE_ARTICLES,
                                     num_dev=RACE_DEV_ARTICLES, seed=SEED + 7)
  runs = {
      "squad": ("run_squad_v1.py", squad_args(
          data, checkpoint, "squad", *squad_files, 12, SQUAD_LEARNING_RATE, SQUAD_EPOCHS)),
      "stsb": ("run_classifier.py", classifier_args(
          data, checkpoint, "STS-B", stsb_data, d / "stsb", STSB_TRAINING)),
      "mrpc": ("run_classifier.py", classifier_args(
          data, checkpoint, "MRPC", mrpc_data, d / "mrpc", MRPC_TRAINING)),
      "squad2": ("run_squad_v2.py", squad_args(
          data, checkpoint, "squad2", *squad_v2_files, 16, SQUAD_V2_LEARNING_RATE,
          SQUAD_V2_EPOCHS)),
      "race": ("run_race.py", race_args(
          data, checkpoint, race_data, d / "race", RACE_TRAINING)),
  }
  if cpu_has_avx512():
    runs["squad_bf16"] = ("run_squad_v1.py", squad_args(
        data, checkpoint, "squad_bf16", *squad_files, 12, SQUAD_LEARNING_RATE,
        SQUAD_EPOCHS) + ["--precision=bf16"])
    runs["mrpc_bf16"] = ("run_classifier.py", classifier_args(
        data, checkpoint, "MRPC", mrpc_data, d / "mrpc_bf16", MRPC_TRAINING)
                         + ["--precision=bf16"])
  return runs


# ---- the pretraining checkpoint as a released model --------------------------

MODEL_FLAGS = ("init_checkpoint", "albert_config_file", "spm_model_file", "vocab_file")


@pytest.fixture(scope="session")
def downloaded_model(albert_tree, learn_data, pretrained):
  """{flag: value} that download_pretrained.py prints for the pretraining checkpoint,
  packed as albert_base_v2.tar.gz in the released layout and served from 127.0.0.1."""
  d = learn_data["dir"]
  (d / "released").mkdir()
  pack_released(d / "released" / "albert_base_v2.tar.gz", "albert_base",
                learn_data["config"], pretrained["checkpoint"],
                learn_data["spm_model"], learn_data["spm_vocab"])
  with ArchiveServer(d / "released") as server:
    proc = run(albert_tree, "download_pretrained.py", "--model=albert_base_v2",
               "--output_dir=%s" % (d / "albert_base_v2"), "--base_url=" + server.url("ok"))
  line = proc.stdout.strip().splitlines()[-1]
  flags = dict(arg[2:].split("=", 1) for arg in shlex.split(line))
  assert sorted(flags) == sorted(MODEL_FLAGS), line
  return flags


def with_model_flags(run_spec, model_flags):
  """RUN_SPEC (script, args) with its four model flags taken from MODEL_FLAGS, a
  {flag: value} as downloaded_model returns."""
  script, args = run_spec
  kept = [a for a in args if a.split("=", 1)[0][2:] not in MODEL_FLAGS]
  return script, kept + ["--%s=%s" % item for item in model_flags.items()]


# ---- HuggingFace's format, both ways (convert_huggingface.py) ---------------


def model_variables(checkpoint):
  """{name: array} of CHECKPOINT without the optimizer's slots and step."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(str(checkpoint))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if not name.endswith(("/adam_m", "/adam_v")) and name != "global_step"}


@pytest.fixture(scope="session")
def hf_round_trip(albert_tree, learn_data, pretrained, downloaded_model):
  """The downloaded model --to_hf, then --from_hf: {flag: value} as --from_hf prints them.
  Every variable of the pretrained model comes back bit for bit."""
  d = learn_data["dir"]
  model = downloaded_model
  for args in (["--init_checkpoint=%s" % model["init_checkpoint"],
                "--albert_config_file=%s" % model["albert_config_file"],
                "--spm_model_file=%s" % model["spm_model_file"], "--to_hf=%s" % (d / "hf")],
               ["--from_hf=%s" % (d / "hf"), "--output_dir=%s" % (d / "hf_tf")]):
    proc = convert(albert_tree, *args, env=_env())
    assert proc.returncode == 0, proc.stderr[-4000:]
  printed = proc.stdout.strip().splitlines()[-1].split("the scripts take ", 1)[1]
  flags = dict(arg[2:].split("=", 1) for arg in shlex.split(printed))
  assert sorted(flags) == sorted(MODEL_FLAGS), printed
  before = model_variables(pretrained["checkpoint"])
  after = model_variables(flags["init_checkpoint"])
  assert sorted(after) == sorted(before)
  changed = [n for n in before if before[n].tobytes() != after[n].tobytes()]
  assert not changed, "TF -> HF -> TF changed %s" % changed
  return flags


@pytest.fixture(scope="session")
def fine_tuned(albert_tree, learn_data, pretrained, mrpc_data, hf_round_trip):
  """Every fine-tuning task's output_dir, trained from the pretraining checkpoint
  (MRPC from the folder download_pretrained.py made of it, taken to HuggingFace's
  format and back: hf_round_trip).

  The runs are independent, so they run two at a time with a thread each: the
  tiny model gains little from a second thread, and the chain takes less time.
  """
  runs = fine_tuning_runs(learn_data, pretrained["checkpoint"], mrpc_data)
  runs["mrpc"] = with_model_flags(runs["mrpc"], hf_round_trip)
  run_scripts(albert_tree, runs.values(), env=_env(threads=1))
  return {task: learn_data["dir"] / task for task in runs}


@pytest.fixture(scope="session")
def mrpc(fine_tuned):
  return at_step(fine_tuned["mrpc"] / "eval_results.txt", MRPC_TRAINING[0])


@pytest.fixture(scope="session")
def stsb(fine_tuned):
  return at_step(fine_tuned["stsb"] / "eval_results.txt", STSB_TRAINING[0])


@pytest.fixture(scope="session")
def squad(fine_tuned):
  # The last evaluation in eval_results.txt is the final checkpoint's.
  return eval_blocks(fine_tuned["squad"] / "eval_results.txt")[-1]


@pytest.fixture(scope="session")
def bf16_results(fine_tuned):
  """{task: (the fp32 run's metric, the bf16 run's), name of the metric} of BF16_TASKS."""
  if "mrpc_bf16" not in fine_tuned:
    pytest.skip("--precision=bf16 needs a CPU with AVX-512")
  return {
      "mrpc": [at_step(fine_tuned[run] / "eval_results.txt", MRPC_TRAINING[0])
               for run in ("mrpc", "mrpc_bf16")],
      "squad": [eval_blocks(fine_tuned[run] / "eval_results.txt")[-1]
                for run in ("squad", "squad_bf16")],
  }


@pytest.fixture(scope="session")
def race(fine_tuned):
  return at_step(fine_tuned["race"] / "eval_results.txt", RACE_TRAINING[0])


@pytest.fixture(scope="session")
def squad_v2(fine_tuned):
  """run_squad_v2.py's SQuAD 2.0 scores and the dev set's no-answer share."""
  return json.loads((fine_tuned["squad2"] / "squad_v2_eval.json").read_text())


def unigram_baseline(record):
  """Masked-LM accuracy of always predicting the most common masked token."""
  import collections  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  counts = collections.Counter()
  for raw in tf.data.TFRecordDataset(str(record)):
    example = tf.train.Example.FromString(raw.numpy())
    ids = example.features.feature["masked_lm_ids"].int64_list.value
    weights = example.features.feature["masked_lm_weights"].float_list.value
    counts.update(i for i, w in zip(ids, weights) if w > 0)
  return counts.most_common(1)[0][1] / sum(counts.values())


# run_classifier.py's probabilities against transformers' on the fine-tuned MRPC model,
# both float32. How far rounding moves them depends on the model the chain trained, so the
# bound scales with transformers' own rounding there (its float32 against its float64).
# Nine models (five chains' MRPC models, two of their 2-rank ones, two at step 0), measured
# 2026-12-07: that rounding 8.3e-8 to 1.1e-5; the two frameworks apart by 1.0e-7 to
# 2.0e-5, at most 3.5 times the rounding where it was over 1e-7 (4.3 times below that,
# where the difference is six float32 steps of a probability). A fixed 1e-5 failed on
# the 1.1e-5 one, in CI.
# Exporting the exact GELU in place of ALBERT's tanh approximation moved them 52 to 4300
# times the rounding on six of the seven models it was tried on; on the seventh, whose
# activations stay where the two GELUs agree, by 5.5e-7, which no bound above rounding
# can tell.
HF_PROBABILITY_FLOOR = 2e-6
HF_ROUNDING_FACTOR = 20

# transformers' tokenizer and classifier from the exported directory on the sentence pairs
# of a JSON file: input ids, class probabilities, and how far float32 rounding moves the
# probabilities from float64's, as JSON.
HF_PREDICT = r'''
import json, sys
import torch
import transformers
directory, pairs, seq = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
torch.set_num_threads(1)
tokenizer = transformers.AutoTokenizer.from_pretrained(directory, use_fast=False)
model = transformers.AutoModelForSequenceClassification.from_pretrained(directory).eval()
batch = tokenizer([a for a, _ in pairs], [b for _, b in pairs], max_length=seq,
                  truncation="longest_first", padding="max_length", return_tensors="pt")
with torch.no_grad():
  probabilities = torch.softmax(model(**batch).logits, -1)
  # The same in float64: how far float32 rounding alone takes transformers' answer.
  exact = torch.softmax(model.double()(**batch).logits, -1)
print(json.dumps({"input_ids": batch["input_ids"].tolist(),
                  "probabilities": probabilities.tolist(),
                  "rounding": (probabilities.double() - exact).abs().max().item()}))
'''


def test_classifier_exported_to_hf_predicts_as_run_classifier(
    albert_tree, learn_data, mrpc_data, fine_tuned, hf_round_trip, hf_env):  # noqa: F811
  """The fine-tuned MRPC classifier: run_classifier.py --do_predict on the dev set, and
  transformers (tokenizer and model) on the directory --to_hf exported."""
  d = learn_data["dir"]
  # The dev pairs as the test split, which is what --do_predict reads.
  dev = [line.split("\t") for line in
         (mrpc_data / "MRPC" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]]
  predict_data = d / "glue_mrpc_predict" / "MRPC"
  predict_data.mkdir(parents=True)
  (predict_data / "test.tsv").write_text("\n".join(
      ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
      + ["%d\t%s\t%s\t%s\t%s" % (i, *row[1:]) for i, row in enumerate(dev)]) + "\n",
      encoding="utf-8")
  out = d / "mrpc_predict"
  out.mkdir()
  for path in fine_tuned["mrpc"].glob("model.ckpt-best.*"):
    shutil.copy(path, out)
  model = hf_round_trip
  run(albert_tree, "run_classifier.py", "--task_name=MRPC",
      "--data_dir=%s" % predict_data.parent, "--output_dir=%s" % out,
      "--albert_config_file=%s" % model["albert_config_file"],
      "--vocab_file=%s" % model["vocab_file"], "--spm_model_file=%s" % model["spm_model_file"],
      "--do_lower_case", "--do_predict", "--max_seq_length=%d" % SEQ, "--predict_batch_size=40")
  expected = np.array([[float(v) for v in line.split("\t")] for line in
                       (out / "test_results.tsv").read_text().splitlines()])
  exported = d / "mrpc_hf"
  proc = convert(albert_tree, "--init_checkpoint=%s" % (out / "model.ckpt-best"),
                 "--albert_config_file=%s" % model["albert_config_file"],
                 "--spm_model_file=%s" % model["spm_model_file"], "--to_hf=%s" % exported,
                 env=_env())
  assert proc.returncode == 0, proc.stderr[-4000:]
  pairs = d / "mrpc_predict_pairs.json"
  pairs.write_text(json.dumps([row[3:5] for row in dev]), encoding="utf-8")
  result = json.loads(hf_env.run(HF_PREDICT, exported, pairs, SEQ).stdout.splitlines()[-1])
  assert result["input_ids"] == record_input_ids(out / "predict.tf_record"), (
      "transformers' tokenizer and run_classifier.py's give different input ids")
  probabilities = np.array(result["probabilities"])
  assert expected.shape == probabilities.shape == (NUM_DEV, 2)
  difference = np.abs(probabilities - expected).max()
  tolerance = max(HF_PROBABILITY_FLOOR, HF_ROUNDING_FACTOR * result["rounding"])
  assert difference <= tolerance, (
      "run_classifier.py and transformers differ by %.3g in a probability, over %.3g; "
      "transformers' float32 differs from its float64 by %.3g"
      % (difference, tolerance, result["rounding"]))
  # A classifier that has learnt the task, not a constant one.
  labels = np.array([int(row[0]) for row in dev])
  assert (expected.argmax(-1) == labels).mean() >= MRPC_ACCURACY


# ---- one process ---------------------------------------------------------


def test_pretraining_learns(pretrained, learn_data):
  results = pretrained["results"]
  unigram = unigram_baseline(learn_data["heldout"])
  mlm = results["masked_lm_accuracy"]
  sop = results["sentence_order_accuracy"]
  assert mlm >= max(MLM_ACCURACY, 2 * unigram), (
      "held-out masked_lm_accuracy %.3f, want >= %.2f and twice the unigram "
      "baseline %.3f (always the most common masked token)" % (
          mlm, MLM_ACCURACY, unigram))
  assert sop >= SOP_ACCURACY, (
      "held-out sentence_order_accuracy %.3f, want >= %.2f (chance 0.5)" % (
          sop, SOP_ACCURACY))


def test_classifier_mrpc_learns(mrpc):
  accuracy = mrpc["eval_accuracy"]
  assert accuracy >= MRPC_ACCURACY, (
      "MRPC dev eval_accuracy %.3f, want >= %.2f (chance 0.5)" % (
          accuracy, MRPC_ACCURACY))


def test_classifier_stsb_learns(stsb):
  pearson = stsb["pearson"]
  assert pearson >= STSB_PEARSON, (
      "STS-B dev pearson %.3f, want >= %.2f (chance 0.0)" % (
          pearson, STSB_PEARSON))


def test_squad_v1_learns(squad):
  exact = squad["exact_match"]
  chance = 100.0 / len(albert_data.ATTRIBUTES)
  assert exact >= SQUAD_EXACT_MATCH, (
      "SQuAD dev exact_match %.1f, want >= %.0f (chance %.0f: the value of a "
      "random attribute of the context)" % (exact, SQUAD_EXACT_MATCH, chance))


def test_squad_v2_learns(squad_v2):
  exact = squad_v2["exact"]
  no_answer_share = 100.0 * squad_v2["NoAns_total"] / squad_v2["total"]
  assert exact >= SQUAD_V2_EXACT, (
      "SQuAD 2.0 dev exact %.1f (has-answer %.1f, no-answer %.1f), want >= %.0f "
      "(chance %.0f: always answering nothing, right on the unanswerable "
      "share)" % (exact, squad_v2["HasAns_exact"], squad_v2["NoAns_exact"],
                  SQUAD_V2_EXACT, no_answer_share))


def test_race_learns(race):
  accuracy = race["eval_accuracy"]
  assert accuracy >= RACE_ACCURACY, (
      "RACE dev eval_accuracy %.3f, want >= %.2f (chance 0.25: one option in "
      "four)" % (accuracy, RACE_ACCURACY))


@pytest.mark.parametrize("task,metric,threshold,chance", [
    ("mrpc", "eval_accuracy", MRPC_ACCURACY, 0.5),
    ("squad", "exact_match", SQUAD_EXACT_MATCH, 100.0 / len(albert_data.ATTRIBUTES))])
def test_bf16_learns_as_fp32(bf16_results, task, metric, threshold, chance):
  fp32, bf16 = (result[metric] for result in bf16_results[task])
  tolerance = BF16_TOLERANCE[metric]
  assert bf16 >= threshold and bf16 >= fp32 - tolerance, (
      "%s %s %.3f with --precision=bf16, %.3f with fp32; want >= %g and within "
      "%g of fp32 (chance %.3g)" % (task, metric, bf16, fp32, threshold, tolerance,
                                     chance))


# ---- two processes -------------------------------------------------------


needs_horovodrun = pytest.mark.skipif(not HOROVODRUN.exists(),
                                      reason="horovodrun not installed")


def on_two_ranks(steps, batch, learning_rate):
  """The flags that make a 2-rank run the same optimisation as a 1-process one.

  With --use_horovod the scripts divide the steps by the number of ranks and
  multiply the learning rate by it, and each rank takes --train_batch_size
  examples a step. Twice the steps, half the batch and half the rate give each
  rank the 1-process step count, and the two ranks together its batch and rate.
  """
  return 2 * steps, batch // 2, learning_rate / 2


@needs_horovodrun
def test_pretraining_two_ranks_learns_as_one(albert_tree, learn_data,
                                             pretrained):
  out = learn_data["dir"] / "pretrain_2"
  horovodrun(albert_tree, "run_pretraining.py",
             *pretraining_args(learn_data, out, *on_two_ranks(
                 PRETRAIN_STEPS, PRETRAIN_BATCH, PRETRAIN_LEARNING_RATE)))
  two = heldout_eval(albert_tree, learn_data,
                     out / ("model.ckpt-%d" % PRETRAIN_STEPS),
                     learn_data["dir"] / "pretrain_2_eval")
  one = pretrained["results"]
  unigram = unigram_baseline(learn_data["heldout"])
  assert two["masked_lm_accuracy"] >= max(MLM_ACCURACY, 2 * unigram), (
      "held-out masked_lm_accuracy %.3f with 2 ranks, want >= %.2f and twice "
      "the unigram baseline %.3f" % (two["masked_lm_accuracy"], MLM_ACCURACY,
                                     unigram))
  assert two["sentence_order_accuracy"] >= SOP_ACCURACY, (
      "held-out sentence_order_accuracy %.3f with 2 ranks, want >= %.2f "
      "(chance 0.5)" % (two["sentence_order_accuracy"], SOP_ACCURACY))
  key = "masked_lm_accuracy"
  assert two[key] >= one[key] - TWO_RANK_TOLERANCE[key], (
      "held-out %s: %.3f with 2 ranks, %.3f with 1, want within %.2f "
      "(chance: see test_pretraining_learns)" % (
          key, two[key], one[key], TWO_RANK_TOLERANCE[key]))


@needs_horovodrun
def test_classifier_mrpc_two_ranks_learns_as_one(albert_tree, learn_data,
                                                 pretrained, mrpc_data, mrpc):
  out = learn_data["dir"] / "mrpc_2"
  steps, batch, learning_rate = on_two_ranks(*MRPC_TRAINING[:1], FINETUNE_BATCH,
                                             MRPC_TRAINING[1])
  horovodrun(albert_tree, "run_classifier.py",
             *classifier_args(learn_data, pretrained["checkpoint"], "MRPC",
                              mrpc_data, out, (steps, learning_rate), batch))
  two = at_step(out / "eval_results.txt", MRPC_TRAINING[0])
  assert two["eval_accuracy"] >= MRPC_ACCURACY, (
      "MRPC dev eval_accuracy %.3f with 2 ranks, want >= %.2f (chance 0.5)" % (
          two["eval_accuracy"], MRPC_ACCURACY))
  tolerance = TWO_RANK_TOLERANCE["eval_accuracy"]
  assert two["eval_accuracy"] >= mrpc["eval_accuracy"] - tolerance, (
      "MRPC dev eval_accuracy %.3f with 2 ranks, %.3f with 1, want within %.2f "
      "(chance 0.5)" % (two["eval_accuracy"], mrpc["eval_accuracy"], tolerance))
