"""create_pretraining_data.py --output_dir: pretraining data in shards, made in parallel.

Upstream's script reads the whole corpus, makes every instance and shuffles them in one
process, so its memory grows with the corpus. With --output_dir the corpus is cut into shards
of whole documents, at most --shard_size_mb MB of text each, and each shard is made by
upstream's own functions as if upstream's script had been run on that shard's text alone:
`create_training_instances` with `random.Random(seed)` and `write_instance_to_example_files`.
A worker's memory is bounded by its shard, and the shards are shared between --num_workers
processes on this machine and between the tasks of a job (horovodrun, mpirun, or
--task_index/--num_tasks).

The output depends only on the inputs, the flags and --random_seed: a shard's seed is derived
from --random_seed and the shard's index (never from the number of workers or tasks), and
numpy's global generator, which upstream's masking also draws from, is seeded with it too.
A document goes to the held-out split when a hash of --random_seed and its text falls below
--test_fraction, so identical documents always land on the same side.

    OUTPUT_DIR/shards.json                 the shard layout, seeds and flags (checked on resume)
    OUTPUT_DIR/training/part-NNNNN.tfrecord
    OUTPUT_DIR/test/part-NNNNN.tfrecord    (with --test_fraction > 0)

Each shard is written under a temporary name and moved into place when complete (the training
file last), so a run started again after an interruption makes only the missing shards.
"""
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import resource
import sys
import time

from absl import flags
import numpy as np

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "output_dir", None,
    "Write sharded output here instead of --output_file: "
    "OUTPUT_DIR/training/part-NNNNN.tfrecord and, with --test_fraction, "
    "OUTPUT_DIR/test/part-NNNNN.tfrecord. Documents are never split "
    "across shards; a run started again skips the shards already complete.")
flags.DEFINE_float(
    "shard_size_mb", 100.0,
    "With --output_dir: at most this many MB (10^6 bytes) of input text per "
    "shard (a single longer document makes a shard of its own). A worker's "
    "memory grows with this, not with the corpus.")
flags.DEFINE_integer(
    "num_workers", None,
    "With --output_dir: processes making shards on this machine (default: "
    "the cores available, divided by the tasks on this host).")
flags.DEFINE_integer(
    "task_index", None,
    "With --output_dir: this task's index among --num_tasks; each task makes "
    "every num_tasks-th shard. Default: the rank horovodrun or mpirun gives "
    "(HOROVOD_RANK, OMPI_COMM_WORLD_RANK or PMI_RANK), else 0.")
flags.DEFINE_integer(
    "num_tasks", None,
    "With --output_dir: how many tasks share the shards (default: the "
    "launcher's size, else 1).")
flags.DEFINE_float(
    "test_fraction", 0.0,
    "With --output_dir: the fraction of documents held out in "
    "OUTPUT_DIR/test, chosen by a rule seeded by --random_seed.")
flags.DEFINE_bool(
    "keep_shard_text", False,
    "With --output_dir: keep each shard's text as part-NNNNN.txt beside its "
    "records (the exact input upstream's functions read for it).")

MB = 1e6
MANIFEST = "shards.json"
SPLITS = ("training", "test")
# What a shard directory may hold: finished parts, kept text, and temporary names.
_OURS = re.compile(r"^(part-\d{5}\.(tfrecord|txt)|\.part-\d{5}\.(tfrecord|txt)\.tmp-\d+)$")
_TOP = re.compile(r"^(%s|\.%s\.tmp-\d+)$" % (re.escape(MANIFEST), re.escape(MANIFEST)))
# The launchers' rank, size and processes-per-host variables, in the order they are read.
_RANK_VARIABLES = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
_SIZE_VARIABLES = ("HOROVOD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_LOCAL_SIZE_VARIABLES = ("HOROVOD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE",
                         "MPI_LOCALNRANKS")
# The flags whose values change the records a shard holds.
_RECORD_FLAGS = ("vocab_file", "spm_model_file", "input_file_mode", "do_lower_case",
                 "do_whole_word_mask", "do_permutation", "favor_shorter_ngram",
                 "random_next_sentence", "max_seq_length", "ngram",
                 "max_predictions_per_seq", "random_seed", "dupe_factor",
                 "masked_lm_prob", "short_seq_prob", "shard_size_mb", "test_fraction")


class ShardError(SystemExit):
  """Bad input or a failed shard: stops the script with one `error:` line, exit status 1."""

  def __init__(self, message):
    super(ShardError, self).__init__("error: " + message)


# ---------------------------------------------------------------- the layout


def input_files(patterns, glob):
  """The files of --input_file (comma-separated names and globs), in upstream's order."""
  files = []
  for pattern in patterns.split(","):
    try:
      matched = glob(pattern)
    except Exception:  # pylint: disable=broad-except
      matched = []  # TensorFlow's glob raises for a folder that does not exist
    if not matched:
      raise ShardError("--input_file: %r matches no file; give existing text "
                       "files or globs, separated by commas." % pattern)
    files.extend(name for name in matched if name not in files)
  return files


def documents(path):
  """Yields (start, end) byte ranges of PATH's documents: runs of non-blank lines.

  A line is blank as upstream's reader sees it: nothing left after stripping
  whitespace. The whole file must be UTF-8, as upstream's text-mode reader needs.
  """
  start = end = None
  offset = 0
  with open(path, "rb") as f:
    for number, line in enumerate(f, 1):
      try:
        blank = not line.decode("utf-8").strip()
      except UnicodeDecodeError as e:
        raise ShardError("%s: line %d is not UTF-8 text (byte %d); convert the "
                         "file to UTF-8." % (path, number, offset + e.start))
      if blank:
        if start is not None:
          yield start, end
        start = None
      else:
        if start is None:
          start = offset
        end = offset + len(line)
      offset += len(line)
  if start is not None:
    yield start, end


def shard_seed(random_seed, index):
  """The seed of shard INDEX: from --random_seed and the index only, < 2**32 for numpy."""
  digest = hashlib.sha256(b"shard:%d:%d" % (random_seed, index)).digest()
  return int.from_bytes(digest[:4], "big")


def plan_shards(files, limit_bytes, random_seed):
  """Cuts FILES into shards of whole documents of at most LIMIT_BYTES of text.

  A shard is a list of pieces (file, start, end), contiguous byte ranges that
  begin and end on document boundaries; a shard may continue into the next file.
  """
  shards = []
  pieces, size = [], 0

  def close():
    shards.append(dict(index=len(shards), pieces=pieces, bytes=size,
                       seed=shard_seed(random_seed, len(shards))))

  for path in files:
    found = False
    try:
      for start, end in documents(path):
        found = True
        if pieces and size + (end - start) > limit_bytes:
          close()
          pieces, size = [], 0
        if pieces and pieces[-1][0] == path:
          pieces[-1][2] = end
        else:
          pieces.append([path, start, end])
        size += end - start
    except OSError as e:
      raise ShardError("%s cannot be read (%s); give readable local text files in "
                       "--input_file." % (path, e.strerror or e))
    if not found:
      raise ShardError("%s holds no text (it is empty or only blank lines); "
                       "leave it out of --input_file." % path)
  if pieces:
    close()
  return shards


# ---------------------------------------------------------------- the tasks


def _first_int(names):
  for name in names:
    if os.environ.get(name, "").strip().isdigit():
      return int(os.environ[name])
  return None


def task_and_tasks():
  """(task_index, num_tasks): the flags, else the launcher's rank and size, else (0, 1).

  The launchers' variables are read directly, so that no Horovod initialisation
  (and no network setup between ranks) is needed to share out the shards.
  """
  num_tasks = FLAGS.num_tasks or _first_int(_SIZE_VARIABLES) or 1
  task = FLAGS.task_index
  if task is None:
    task = _first_int(_RANK_VARIABLES) or 0
  if not 0 <= task < num_tasks:
    raise ShardError("--task_index=%d is not in [0, %d); give 0 <= --task_index < "
                     "--num_tasks." % (task, num_tasks))
  return task, num_tasks


def default_workers():
  """The cores this process may use, shared between the tasks on this host."""
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:
    cores = os.cpu_count() or 1
  return max(1, cores // (_first_int(_LOCAL_SIZE_VARIABLES) or 1))


# ---------------------------------------------------------------- the output directory


def check_output_dir(output_dir):
  """Refuses an output directory that holds anything this command does not write."""
  if not os.path.exists(output_dir):
    return
  if not os.path.isdir(output_dir):
    raise ShardError("--output_dir=%s is not a directory; give a new or empty "
                     "directory." % output_dir)
  for name in sorted(os.listdir(output_dir)):
    path = os.path.join(output_dir, name)
    if name in SPLITS and os.path.isdir(path):
      strange = [n for n in sorted(os.listdir(path)) if not _OURS.match(n)]
      if strange:
        raise ShardError("--output_dir=%s holds %s, which this command did not "
                         "write; give a new or empty directory." %
                         (output_dir, os.path.join(name, strange[0])))
    elif not _TOP.match(name):
      raise ShardError("--output_dir=%s holds %s, which this command did not write; "
                       "give a new or empty directory." % (output_dir, name))


def manifest(files, shards):
  return dict(flags={name: FLAGS[name].value for name in _RECORD_FLAGS},
              inputs=[dict(path=path, bytes=os.path.getsize(path)) for path in files],
              shards=shards)


def write_manifest(output_dir, content, task):
  """Writes shards.json, or checks that the one there (from a run being resumed) agrees."""
  path = os.path.join(output_dir, MANIFEST)
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old != content:
      changed = sorted(k for k in content if old.get(k) != content[k])
      raise ShardError("--output_dir=%s holds shards made from other %s; give a new "
                       "--output_dir, or the same inputs and flags to resume." %
                       (output_dir, " and ".join(changed) or "settings"))
    return
  for split in SPLITS:
    os.makedirs(os.path.join(output_dir, split), exist_ok=True)
  temporary = os.path.join(output_dir, ".%s.tmp-%d" % (MANIFEST, task))
  with open(temporary, "w") as f:
    json.dump(content, f, indent=1)
  os.replace(temporary, path)


def part_path(output_dir, split, index, ext="tfrecord", temporary=False):
  """A part's final name, or this process's temporary name for it (hidden, with the pid:
  two processes making the same shard, e.g. one left over from a killed run, never write
  the same file, and either's complete file may be moved into place)."""
  name = "part-%05d.%s" % (index, ext)
  if temporary:
    return os.path.join(output_dir, split, ".%s.tmp-%d" % (name, os.getpid()))
  return os.path.join(output_dir, split, name)


def remove_temporaries(output_dir, shards):
  """Removes what interrupted runs left of SHARDS: temporary files only."""
  indexes = {"%05d" % shard["index"] for shard in shards}
  for split in SPLITS:
    folder = os.path.join(output_dir, split)
    for name in os.listdir(folder):
      match = re.match(r"^\.part-(\d{5})\.\w+\.tmp-\d+$", name)
      if match and match.group(1) in indexes:
        os.remove(os.path.join(folder, name))


def splits_made():
  return SPLITS if FLAGS.test_fraction > 0 else SPLITS[:1]


def complete(output_dir, index):
  """Whether shard INDEX is finished: its training file, moved into place last, exists."""
  return os.path.exists(part_path(output_dir, "training", index))


# ---------------------------------------------------------------- one shard


def held_out(document, random_seed, fraction):
  """Whether DOCUMENT (bytes) is in the test split: a hash of the seed and its text."""
  if fraction <= 0:
    return False
  digest = hashlib.sha256(b"split:%d:" % random_seed + document).digest()
  return int.from_bytes(digest[:8], "big") < fraction * 2.0**64


def read_documents(pieces):
  """The shard's documents, each its lines as bytes, as documents() delimits them."""
  docs = []
  for path, start, end in pieces:
    with open(path, "rb") as f:
      f.seek(start)
      text = f.read(end - start)
    if len(text) != end - start:
      raise ValueError("the file is shorter than when the shards were laid out")
    current = []
    for line in text.split(b"\n"):
      if line.decode("utf-8").strip():
        current.append(line)
      elif current:
        docs.append(current)
        current = []
    if current:
      docs.append(current)
  return docs


class ShardMaker(object):
  """Makes shards with upstream's functions, a tokenizer per process."""

  def __init__(self, upstream, output_dir):
    self.upstream = upstream
    self.output_dir = output_dir
    self._tokenizer = None

  def tokenizer(self):
    if self._tokenizer is None:
      self._tokenizer = self.upstream.tokenization.FullTokenizer(
          vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
          spm_model_file=FLAGS.spm_model_file)
    return self._tokenizer

  def make(self, shard):
    """Writes shard SHARD's parts; returns the instances per split."""
    docs = {split: [] for split in SPLITS}
    for doc in read_documents(shard["pieces"]):
      test = held_out(b"\n".join(doc), FLAGS.random_seed, FLAGS.test_fraction)
      docs["test" if test else "training"].append(doc)
    counts = {}
    for split in reversed(splits_made()):  # training last: it marks the shard done
      counts[split] = self.make_split(shard, split, docs[split])
    return counts

  def make_split(self, shard, split, docs):
    """Runs upstream's functions on the split's text, as its script would with the seed."""
    up, index = self.upstream, shard["index"]
    text = part_path(self.output_dir, split, index, "txt", temporary=True)
    with open(text, "wb") as f:
      f.write(b"".join(b"\n".join(doc) + b"\n\n" for doc in docs))
    np.random.seed(shard["seed"])
    rng = random.Random(shard["seed"])
    instances = up.create_training_instances(
        [text], self.tokenizer(), FLAGS.max_seq_length, FLAGS.dupe_factor,
        FLAGS.short_seq_prob, FLAGS.masked_lm_prob, FLAGS.max_predictions_per_seq, rng)
    records = part_path(self.output_dir, split, index, temporary=True)
    up.write_instance_to_example_files(instances, self.tokenizer(), FLAGS.max_seq_length,
                                       FLAGS.max_predictions_per_seq, [records])
    if FLAGS.keep_shard_text:
      os.replace(text, part_path(self.output_dir, split, index, "txt"))
    else:
      os.remove(text)
    os.replace(records, part_path(self.output_dir, split, index))
    return len(instances)


def describe(shard):
  """The shard and its input files, for an error line."""
  return "shard %d (%s)" % (shard["index"], ", ".join(
      "%s bytes %d-%d" % (path, start, end) for path, start, end in shard["pieces"]))


def _failure(e):
  detail = (str(e).strip().splitlines() or [""])[0]
  return "%s: %s" % (type(e).__name__, detail) if detail else type(e).__name__


def _worker(connection, maker):
  """A worker process: makes the shards it is sent until it is sent None."""
  while True:
    shard = connection.recv()
    if shard is None:
      return
    try:
      connection.send((shard["index"], maker.make(shard), None))
    except Exception as e:  # pylint: disable=broad-except
      connection.send((shard["index"], None, _failure(e)))


# ---------------------------------------------------------------- the run


class Progress(object):
  """One line per finished shard: sizes, MB/s over this run, and the time left."""

  def __init__(self, todo, out=sys.stderr):
    self.total = len(todo)
    self.left_bytes = sum(shard["bytes"] for shard in todo)
    self.done_bytes = 0
    self.done = 0
    self.start = time.time()
    self.out = out

  def finished(self, shard, counts):
    self.done += 1
    self.done_bytes += shard["bytes"]
    self.left_bytes -= shard["bytes"]
    elapsed = max(time.time() - self.start, 1e-9)
    rate = self.done_bytes / MB / elapsed
    left = self.left_bytes / MB / rate if rate else 0
    print("shard %d done (%s): %d of %d, %.2f MB at %.2f MB/s, about %s left" % (
        shard["index"], ", ".join("%s %d instances" % item for item in sorted(counts.items())),
        self.done, self.total, self.done_bytes / MB, rate, _duration(left)),
          file=self.out, flush=True)


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds >= 3600:
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)
  return "%dm%02ds" % (seconds // 60, seconds % 60) if seconds >= 60 else "%ds" % seconds


def run_in_process(maker, todo, progress):
  for shard in todo:
    try:
      counts = maker.make(shard)
    except Exception as e:  # pylint: disable=broad-except
      raise ShardError("%s failed: %s; fix it and run the same command again "
                       "(finished shards are kept)." % (describe(shard), _failure(e)))
    progress.finished(shard, counts)


def run_in_workers(maker, todo, progress, num_workers):
  """Shares TODO out between NUM_WORKERS forked processes, a shard at a time.

  After a failure no new shard is started; shards in progress finish. Each
  failure, a worker that died included, is one `error:` line naming its shard.
  """
  context = multiprocessing.get_context("fork")
  queue = list(reversed(todo))
  busy, workers, errors = {}, [], []
  for _ in range(min(num_workers, len(todo))):
    ours, theirs = context.Pipe()
    process = context.Process(target=_worker, args=(theirs, maker), daemon=True)
    process.start()
    theirs.close()
    workers.append((process, ours))
    if queue:
      busy[ours] = queue.pop()
      ours.send(busy[ours])
  by_sentinel = {process.sentinel: ours for process, ours in workers}
  while busy:
    ready = multiprocessing.connection.wait(list(busy) + [
        process.sentinel for process, ours in workers if ours in busy])
    for item in ready:
      connection = by_sentinel.get(item, item)
      if connection not in busy:
        continue
      shard = busy.pop(connection)
      try:
        _, counts, error = connection.recv()
      except (EOFError, OSError):
        counts, error = None, "its worker process died"
      if error:
        errors.append("%s failed: %s" % (describe(shard), error))
        print("error: " + errors[-1], file=sys.stderr, flush=True)
        queue = []
      else:
        progress.finished(shard, counts)
      if queue:
        busy[connection] = queue.pop()
        connection.send(busy[connection])
  for process, ours in workers:
    if process.is_alive():
      ours.send(None)
    process.join()
  if errors:
    sys.exit(1)


def peak_worker_rss_mb(in_process):
  """The largest resident set a worker reached, in MB (Linux reports KiB)."""
  who = resource.RUSAGE_SELF if in_process else resource.RUSAGE_CHILDREN
  return resource.getrusage(who).ru_maxrss * 1024 / MB


def main(upstream):
  """create_pretraining_data.py with --output_dir; UPSTREAM is the script's module."""
  if FLAGS.shard_size_mb <= 0:
    raise ShardError("--shard_size_mb=%s must be positive." % FLAGS.shard_size_mb)
  if not 0 <= FLAGS.test_fraction < 1:
    raise ShardError("--test_fraction=%s must be in [0, 1)." % FLAGS.test_fraction)
  num_workers = FLAGS.num_workers or default_workers()
  if num_workers < 1:
    raise ShardError("--num_workers=%d must be at least 1." % num_workers)
  task, num_tasks = task_and_tasks()
  output_dir = FLAGS.output_dir
  check_output_dir(output_dir)
  files = input_files(FLAGS.input_file, upstream.tf.io.gfile.glob)
  shards = plan_shards(files, FLAGS.shard_size_mb * MB, FLAGS.random_seed)
  write_manifest(output_dir, manifest(files, shards), task)

  mine = shards[task::num_tasks]
  todo = [shard for shard in mine if not complete(output_dir, shard["index"])]
  remove_temporaries(output_dir, todo)
  print("%d shards of %.2f MB of text in %s; task %d of %d makes %d, %d already complete; "
        "%d workers" % (len(shards), sum(s["bytes"] for s in shards) / MB, output_dir,
                        task, num_tasks, len(mine), len(mine) - len(todo), num_workers),
        file=sys.stderr, flush=True)
  # Upstream's functions log their first 20 instances; with a shard at a time that is noise.
  upstream.tf.compat.v1.logging.set_verbosity(upstream.tf.compat.v1.logging.WARN)
  maker = ShardMaker(upstream, output_dir)
  progress = Progress(todo)
  in_process = num_workers == 1 or len(todo) <= 1
  if in_process:
    run_in_process(maker, todo, progress)
  else:
    run_in_workers(maker, todo, progress, num_workers)
  elapsed = time.time() - progress.start
  print("done: task %d of %d, %d shards made, %.2f MB in %.1f s (%.2f MB/s); peak memory "
        "per worker %.0f MB" % (task, num_tasks, len(todo), progress.done_bytes / MB, elapsed,
                                progress.done_bytes / MB / max(elapsed, 1e-9),
                                peak_worker_rss_mb(in_process)), file=sys.stderr, flush=True)
