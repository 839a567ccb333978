"""create_pretraining_data.py --output_dir (shards, workers, ranks, held-out split) and
run_pretraining.py --eval_file, run as users run them on a tiny generated corpus.

Shards are made small (--shard_size_mb of a few KB) so that the corpus gives about a dozen of
them. Upstream's script is the oracle for what a shard holds: run on a shard's text with the
shard's seed (both kept by --keep_shard_text and shards.json), it makes as many instances.
"""
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import albert_data
from .tree import run_scripts
from .tiny_albert import read_results, last, run, script_env

HOROVODRUN = Path(sys.executable).with_name("horovodrun")
SHARD_MB = 0.004
TEST_FRACTION = 0.3


def env():
  """The scripts' environment: one thread each, no launcher variables of our own."""
  e = {k: v for k, v in script_env().items()
       if not k.startswith(("HOROVOD_", "OMPI_", "PMI_", "PMIX_"))}
  e.update(OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
           TF_CPP_MIN_LOG_LEVEL="2")
  return e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """Two text files of generated documents, and a sentencepiece model trained on them."""
  d = tmp_path_factory.mktemp("shards")
  albert_data.write_corpus(d / "corpus-a.txt", num_docs=80, seed=0)
  albert_data.write_corpus(d / "corpus-b.txt", num_docs=40, seed=1)
  spm_model, spm_vocab = albert_data.train_sentencepiece(d / "corpus-a.txt", d / "sp")
  return dict(dir=d, files=str(d / "corpus-*.txt"), spm_model=spm_model, spm_vocab=spm_vocab)


def data_args(corpus, output_dir, *extra, seed=7, dupe=1):
  return ["--input_file=%s" % corpus["files"], "--output_dir=%s" % output_dir,
          "--vocab_file=%s" % corpus["spm_vocab"], "--spm_model_file=%s" % corpus["spm_model"],
          "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=%d" % dupe,
          "--random_seed=%d" % seed, "--shard_size_mb=%s" % SHARD_MB,
          "--test_fraction=%s" % TEST_FRACTION, *extra]


def records(path):
  """The number of records in a TFRecord file, read from its framing (length, crc, data, crc);
  fails on a truncated file."""
  data = Path(path).read_bytes()
  count = offset = 0
  while offset < len(data):
    assert offset + 12 <= len(data), path
    length, = struct.unpack("<Q", data[offset:offset + 8])
    offset += 12 + length + 4
    assert offset <= len(data), path
    count += 1
  return count


def files(output_dir, pattern="*.tfrecord"):
  """{relative path: bytes} of the shards.json and the record files under OUTPUT_DIR."""
  out = Path(output_dir)
  paths = [out / "shards.json"] + sorted(out.glob("*/" + pattern))
  return {str(p.relative_to(out)): p.read_bytes() for p in paths}


def error_lines(text):
  return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def made(albert_tree, corpus):
  """The corpus made by one worker (text kept) and by two workers."""
  d = corpus["dir"]
  one, two = run_scripts(albert_tree, [
      ("create_pretraining_data.py", data_args(corpus, d / "w1", "--num_workers=1",
                                               "--keep_shard_text")),
      ("create_pretraining_data.py", data_args(corpus, d / "w2", "--num_workers=2"))], env())
  return dict(w1=d / "w1", w2=d / "w2", log1=one.stderr, log2=two.stderr,
              manifest=json.loads((d / "w1" / "shards.json").read_text()))


def test_one_and_two_workers_write_the_same_files(made):
  shards = made["manifest"]["shards"]
  assert len(shards) >= 8, len(shards)
  assert all(s["bytes"] <= SHARD_MB * 1e6 for s in shards)
  one, two = files(made["w1"]), files(made["w2"])
  assert len(one) == 1 + 2 * len(shards)
  assert one == two
  # A progress line per shard, with its rate and the time left.
  for log in (made["log1"], made["log2"]):
    progress = re.findall(r"^shard (\d+) done .* MB/s, about \S+ left$", log, re.M)
    assert sorted(map(int, progress)) == list(range(len(shards))), log[-3000:]


@pytest.mark.skipif(not HOROVODRUN.exists(), reason="horovodrun not installed")
def test_two_ranks_under_horovodrun_write_the_same_files(albert_tree, corpus, made, tmp_path):
  out = tmp_path / "ranks"
  proc = subprocess.run(
      [str(HOROVODRUN), "-np", "2", "--gloo", sys.executable,
       str(albert_tree / "create_pretraining_data.py"), *data_args(corpus, out, "--num_workers=1")],
      env=env(), capture_output=True, text=True, timeout=600)
  output = proc.stdout + proc.stderr
  assert proc.returncode == 0, output[-5000:]
  # Each rank made every other shard, and only those.
  total = len(made["manifest"]["shards"])
  for rank in (0, 1):
    assert re.search(r"task %d of 2 makes %d, 0 already complete" % (rank, len(
        range(rank, total, 2))), output), output[-3000:]
  assert files(out) == files(made["w2"])


def test_instance_counts_are_upstreams_on_each_shard(albert_tree, corpus, made, tmp_path):
  """Upstream's script on a shard's kept text, with the shard's seed, makes as many
  instances as the shard's records (its masks differ: upstream leaves numpy unseeded)."""
  shards = made["manifest"]["shards"]
  picks = [(shards[0], "test"), (shards[-1], "training")]
  runs = []
  for shard, split in picks:
    text = made["w1"] / split / ("part-%05d.txt" % shard["index"])
    runs.append(("create_pretraining_data.py", [
        "--input_file=%s" % text, "--output_file=%s" % (tmp_path / ("%s-%d" % (
            split, shard["index"]))),
        "--vocab_file=%s" % corpus["spm_vocab"], "--spm_model_file=%s" % corpus["spm_model"],
        "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=1",
        "--random_seed=%d" % shard["seed"]]))
  for (shard, split), proc in zip(picks, run_scripts(albert_tree, runs, env())):
    ours = records(made["w1"] / split / ("part-%05d.tfrecord" % shard["index"]))
    theirs = int(re.search(r"Wrote (\d+) total instances", proc.stderr).group(1))
    assert ours == theirs > 0, (shard["index"], split, ours, theirs)
  # Every shard has its own seed.
  assert len({s["seed"] for s in shards}) == len(shards)


def documents(text):
  return [doc.strip() for doc in re.split(r"\n\s*\n", text) if doc.strip()]


def test_train_and_test_share_no_document(corpus, made):
  corpus_docs = sorted(doc for path in sorted(corpus["dir"].glob("corpus-*.txt"))
                       for doc in documents(path.read_text(encoding="utf-8")))
  split_docs = {split: [doc for path in sorted((made["w1"] / split).glob("*.txt"))
                        for doc in documents(path.read_text(encoding="utf-8"))]
                for split in ("training", "test")}
  train, test = split_docs["training"], split_docs["test"]
  # Whole documents, each in exactly one shard of one split.
  assert sorted(train + test) == corpus_docs
  assert not set(train) & set(test)
  assert 0.15 < len(test) / len(corpus_docs) < 0.45, (len(test), len(corpus_docs))


def worker_pids(pid):
  try:
    return [child.pid for child in psutil.Process(pid).children()]
  except psutil.NoSuchProcess:
    return []


def test_a_run_resumes_after_a_worker_is_killed(albert_tree, corpus, tmp_path):
  """A worker killed mid-shard: one error line naming the shard, no partial file under a
  final name; the same command again finishes with an uninterrupted run's files."""
  out, whole = tmp_path / "resumed", tmp_path / "whole"
  args = data_args(corpus, out, "--num_workers=2", dupe=4)
  proc = subprocess.Popen([sys.executable, str(albert_tree / "create_pretraining_data.py"),
                           *args], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  try:
    deadline = time.time() + 300
    while time.time() < deadline:
      done = list(out.glob("training/part-*.tfrecord"))
      in_progress = list(out.glob("training/.part-*.tmp-*"))
      if len(done) >= 2 and in_progress and len(worker_pids(proc.pid)) == 2:
        os.kill(worker_pids(proc.pid)[0], signal.SIGKILL)
        break
      time.sleep(0.01)
    _, stderr = proc.communicate(timeout=300)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.communicate()
  errors = error_lines(stderr)
  assert proc.returncode != 0 and len(errors) == 1, stderr[-3000:]
  assert re.match(r"error: shard \d+ \(.*corpus-[ab]\.txt bytes \d+-\d+.*\) failed: its "
                  r"worker process died", errors[0]), errors
  total = len(json.loads((out / "shards.json").read_text())["shards"])
  finished = sorted(out.glob("training/part-*.tfrecord"))
  assert 2 <= len(finished) < total
  for path in finished + sorted(out.glob("test/part-*.tfrecord")):
    records(path)  # complete files only

  again = run(albert_tree, "create_pretraining_data.py", *args, cwd=tmp_path, env=env())
  assert "%d already complete" % len(finished) in again.stderr
  # The uninterrupted reference, made by two tasks of --task_index/--num_tasks, one after
  # the other (as ranks of a scheduler may run at different times).
  for task in (0, 1):
    run(albert_tree, "create_pretraining_data.py",
        *data_args(corpus, whole, "--num_workers=1", "--task_index=%d" % task, "--num_tasks=2",
                   dupe=4), cwd=tmp_path, env=env())
    made_so_far = sorted(int(p.name[5:10]) for p in whole.glob("training/*.tfrecord"))
    assert made_so_far == list(range(0, total, 2) if task == 0 else range(total))
  assert files(out) == files(whole)
  assert not list(out.glob("*/.part-*"))


def bad_inputs(corpus, tmp_path):
  """(name, args, output dir) of each bad input; the runs must leave their output dir as is."""
  empty = tmp_path / "empty.txt"
  empty.write_text("")
  latin1 = tmp_path / "latin1.txt"
  latin1.write_bytes("une phrase.\nl'\u00e9t\u00e9 est chaud.\n".encode("latin-1"))
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("mine\n")
  good = corpus["files"]
  cases = [("empty file", "%s,%s" % (good, empty), tmp_path / "out-empty"),
           ("non-UTF-8", "%s,%s" % (latin1, good), tmp_path / "out-latin1"),
           ("missing glob", "%s,%s" % (good, tmp_path / "nothing-*.txt"),
            tmp_path / "out-missing"),
           ("foreign output dir", good, other)]
  return [(name, [a if not a.startswith("--input_file=") else "--input_file=" + inputs
                  for a in data_args(corpus, out, "--num_workers=2")], out)
          for name, inputs, out in cases]


def test_bad_input_is_one_error_line_and_writes_nothing(albert_tree, corpus, tmp_path):
  cases = bad_inputs(corpus, tmp_path)
  before = {name: sorted(p.name for p in out.rglob("*")) if out.exists() else None
            for name, _, out in cases}
  commands = [[sys.executable, str(albert_tree / "create_pretraining_data.py"), *args]
              for _, args, _ in cases]
  procs = [subprocess.Popen(c, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for c in commands[:2]]
  outputs = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
  procs = [subprocess.Popen(c, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for c in commands[2:]]
  outputs += [p.communicate(timeout=300) + (p.returncode,) for p in procs]
  expected = {"empty file": r"empty\.txt holds no text",
              "non-UTF-8": r"latin1\.txt: line 2 is not UTF-8 text",
              "missing glob": r"nothing-\*\.txt' matches no file",
              "foreign output dir": r"holds notes\.txt, which this command did not write"}
  for (name, _, out), (stdout, stderr, code) in zip(cases, outputs):
    errors = error_lines(stdout + stderr)
    assert code != 0 and len(errors) == 1, (name, stderr[-2000:])
    assert re.search(expected[name], errors[0]), (name, errors)
    after = sorted(p.name for p in out.rglob("*")) if out.exists() else None
    assert after == before[name], (name, after)


# ------------------------------------------------------------------ --eval_file

# Prints which of the documents (a JSON list on stdin) the command's rule holds out at
# --test_fraction=0.5 and --random_seed=argv[2]. Usage: python -c HELD_OUT TREE SEED
HELD_OUT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pretraining_shards import held_out
print(json.dumps([held_out(doc.encode(), int(sys.argv[2]), 0.5)
                  for doc in json.load(sys.stdin)]))
"""


def _lines(word, shape):
  lines, width = shape
  return "\n".join(" ".join([word] * width) for _ in range(lines))


@pytest.fixture(scope="module")
def two_kinds(albert_tree, corpus, tmp_path_factory):
  """Shards whose training split is all `anna` and whose test split is all `tom`.

  The documents are picked with the command's own split rule (pretraining_shards.held_out)
  from candidates of many shapes; test_train_and_test_share_no_document checks the rule
  against the files the command writes.
  """
  d = tmp_path_factory.mktemp("two-kinds")
  seed = 7
  candidates = [_lines(word, (lines, width)) for lines in range(2, 10)
                for width in range(6, 14) for word in ("anna", "tom")]
  held = json.loads(subprocess.run(
      [sys.executable, "-c", HELD_OUT, str(albert_tree), str(seed)],
      input=json.dumps(candidates), capture_output=True, text=True, check=True).stdout)
  docs = [doc for doc, test in zip(candidates, held) if test == doc.startswith("tom")]
  assert len(docs) > 40, len(docs)
  (d / "text.txt").write_text("\n\n".join(docs * 2) + "\n", encoding="utf-8")
  out = d / "shards"
  run(albert_tree, "create_pretraining_data.py",
      "--input_file=%s" % (d / "text.txt"), "--output_dir=%s" % out,
      "--vocab_file=%s" % corpus["spm_vocab"], "--spm_model_file=%s" % corpus["spm_model"],
      "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=2",
      "--random_seed=%d" % seed, "--shard_size_mb=0.01", "--test_fraction=0.5",
      "--num_workers=2", cwd=d, env=env())
  vocab_size = len(corpus["spm_vocab"].read_text(encoding="utf-8").splitlines())
  config = albert_data.write_albert_config(d / "config.json", vocab_size=vocab_size,
                                           max_position_embeddings=64)
  return dict(dir=d, out=out, config=config)


def pretraining_args(data, output_dir, *extra):
  return ["--input_file=%s" % (data["out"] / "training" / "*.tfrecord"),
          "--output_dir=%s" % output_dir, "--albert_config_file=%s" % data["config"],
          "--train_batch_size=16", "--eval_batch_size=16", "--max_seq_length=32",
          "--max_predictions_per_seq=5", "--optimizer=lamb", "--learning_rate=1e-2",
          "--num_train_steps=30", "--num_warmup_steps=3", "--save_checkpoints_steps=30",
          "--iterations_per_loop=10", "--max_eval_steps=4", *extra]


@pytest.mark.long
def test_eval_file_evaluates_the_test_shards_only(albert_tree, two_kinds, tmp_path):
  """Trained on `anna`, the model predicts masked `anna` and not masked `tom`: masked-LM
  accuracy shows which split an evaluation read."""
  out = tmp_path / "pretraining"
  test_glob = "--eval_file=%s" % (two_kinds["out"] / "test" / "*.tfrecord")
  run(albert_tree, "run_pretraining.py",
      *pretraining_args(two_kinds, out, "--do_train", "--do_eval", test_glob),
      cwd=tmp_path, env=env())
  on_test = last(read_results(out / "eval_results.txt"), "masked_lm_accuracy")
  run(albert_tree, "run_pretraining.py", *pretraining_args(two_kinds, out, "--do_eval"),
      cwd=tmp_path, env=env())
  on_training = last(read_results(out / "eval_results.txt"), "masked_lm_accuracy")
  assert on_training > 0.9 and on_test < 0.1, (on_training, on_test)
  if not HOROVODRUN.exists():
    return
  # Under Horovod: rank 0 evaluates, on --eval_file.
  proc = subprocess.run(
      [str(HOROVODRUN), "-np", "2", "--gloo", sys.executable,
       str(albert_tree / "run_pretraining.py"),
       *pretraining_args(two_kinds, out, "--do_eval", "--use_horovod", test_glob)],
      env=env(), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
  assert last(read_results(out / "eval_results.txt"), "masked_lm_accuracy") == pytest.approx(
      on_test, abs=1e-6)
  assert not (out / "1" / "eval_results.txt").exists()


def test_eval_file_matching_nothing_is_one_error_line(albert_tree, two_kinds, tmp_path):
  proc = subprocess.run(
      [sys.executable, str(albert_tree / "run_pretraining.py"),
       *pretraining_args(two_kinds, tmp_path / "out", "--do_eval",
                         "--eval_file=%s" % (tmp_path / "nothing" / "*.tfrecord"))],
      env=env(), capture_output=True, text=True, timeout=300)
  errors = error_lines(proc.stdout + proc.stderr)
  assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
  assert "--eval_file=%s matches no file" % (tmp_path / "nothing" / "*.tfrecord") in errors[0]
