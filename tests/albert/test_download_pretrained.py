"""download_pretrained.py, run as a user runs it, against archives in the released layout.

The archives are built here from the tiny pretraining checkpoint (tiny_albert.tiny_pretrained)
and served by an HTTP server on 127.0.0.1 that the module starts and stops; file:// URLs too.
Every refusal must print exactly one `error:` line, exit non-zero and leave the output folder
and its parent as they were (the part of an interrupted download excepted, kept to resume).
"""
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tarfile

import pytest

import albert_data
from .hf_oracle import hf_env, record_input_ids  # noqa: F401 (hf_env: a fixture)
from .released_models import ArchiveServer, add_bytes, pack_released
from .tiny_albert import assert_initialized_from_checkpoint, last, read_results, run

MODEL = "albert_base_v2"
DROP_AFTER = 1000


def download_env():
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1",
             TF_NUM_INTRAOP_THREADS="1")
  return env


def download(tree, *args):
  """`python TREE/download_pretrained.py ARGS`; the finished process."""
  return subprocess.run([sys.executable, str(tree / "download_pretrained.py"), *args],
                        capture_output=True, text=True, env=download_env(), timeout=600)


def listing(folder):
  """{relative path: (size, mtime)} of everything under FOLDER."""
  return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
          for p in sorted(folder.rglob("*"))}


def error_lines(proc):
  return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def assert_refused(proc, parent, before, *words):
  """One error line containing WORDS, a non-zero exit, PARENT as it was."""
  errors = error_lines(proc)
  assert proc.returncode != 0 and len(errors) == 1, (proc.returncode, proc.stderr[-3000:])
  for word in words:
    assert word in errors[0], errors[0]
  assert listing(parent) == before
  return errors[0]


def succeeded(proc):
  assert proc.returncode == 0 and not error_lines(proc), proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 1, proc.stdout
  return dict(arg[2:].split("=", 1) for arg in shlex.split(lines[0]))


def config_with(tiny_data, path, **changes):
  config = json.loads(tiny_data["config"].read_text())
  config.update(changes)
  path.write_text(json.dumps(config))
  return path


def hostile(kind):
  """A member of KIND that would land outside the output directory."""
  def extra(tar):
    if kind == "dotdot":
      add_bytes(tar, "albert_base/../../escaped.txt", b"x")
    elif kind == "absolute":
      add_bytes(tar, "/tmp/albert_absolute_member.txt", b"x")
    elif kind == "symlink":
      add_bytes(tar, "albert_base/passwd", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    elif kind == "symlink_up":
      add_bytes(tar, "albert_base/up", b"", type=tarfile.SYMTYPE, linkname="../..")
    elif kind == "hardlink":
      add_bytes(tar, "albert_base/hard", b"", type=tarfile.LNKTYPE, linkname="../outside")
    elif kind == "through_link":
      # albert_base/up -> .. stays inside, but albert_base/up/esc -> .. then leaves it.
      add_bytes(tar, "albert_base/up", b"", type=tarfile.SYMTYPE, linkname="..")
      add_bytes(tar, "albert_base/up/esc", b"", type=tarfile.SYMTYPE, linkname="..")
    elif kind == "device":
      add_bytes(tar, "albert_base/null", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    elif kind == "fifo":
      add_bytes(tar, "albert_base/pipe", b"", type=tarfile.FIFOTYPE)
  return extra


HOSTILE = ("dotdot", "absolute", "symlink", "symlink_up", "hardlink", "through_link",
           "device", "fifo")


@pytest.fixture(scope="module")
def archives(tiny_data, tiny_pretrained, tmp_path_factory):
  """ROOT/VARIANT/MODEL.tar.gz for each variant the tests serve."""
  root = tmp_path_factory.mktemp("archives")
  work = tmp_path_factory.mktemp("archive-inputs")
  files = dict(config=tiny_data["config"], checkpoint=tiny_pretrained["checkpoint"],
               spm_model=tiny_data["spm_model"], spm_vocab=tiny_data["spm_vocab"])

  def pack(variant, model=MODEL, **changes):
    (root / variant).mkdir()
    return pack_released(root / variant / ("%s.tar.gz" % model), "albert_base",
                         **dict(files, **changes))

  good = pack("good")
  # The Chinese layout: a WordPiece vocabulary of vocab_size lines, no sentencepiece model.
  texts = [p.read_text(encoding="utf-8") for p in
           [tiny_data["dir"] / "corpus.txt", *sorted((tiny_data["dir"] / "glue").rglob("*.tsv"))]]
  vocab_txt = albert_data.write_wordpiece_vocab(work / "vocab_chinese.txt", texts,
                                                tiny_data["vocab_size"])
  pack_released(root / "good" / "albert_base_zh.tar.gz", "albert_base", tiny_data["config"],
                tiny_pretrained["checkpoint"], vocab_txt=vocab_txt.read_bytes())
  (root / "truncated").mkdir()
  data = good.read_bytes()
  (root / "truncated" / ("%s.tar.gz" % MODEL)).write_bytes(data[:len(data) // 2])
  for kind in HOSTILE:
    pack("hostile_" + kind, extra=hostile(kind))
  size = tiny_data["vocab_size"]
  pack("wrong_shapes", config=config_with(tiny_data, work / "wide.json",
                                          intermediate_size=2 * 64 + 8))
  pack("missing", config=config_with(tiny_data, work / "groups.json", num_hidden_groups=2))
  pack("spm_size", config=config_with(tiny_data, work / "vocab.json", vocab_size=size + 1))
  return dict(root=root, good=good, digest=hashlib.sha256(data).hexdigest(),
              checkpoint=tiny_pretrained["checkpoint"])


@pytest.fixture(scope="module")
def server(archives):
  with ArchiveServer(archives["root"], drop_after=DROP_AFTER) as running:
    yield running


@pytest.fixture(scope="module")
def downloaded(albert_tree, server, tmp_path_factory):
  """albert_base_v2 downloaded from the server into a new folder."""
  parent = tmp_path_factory.mktemp("downloaded")
  out = parent / MODEL
  before = len(server.requests)
  proc = download(albert_tree, "--model=" + MODEL, "--output_dir=%s" % out,
                  "--base_url=" + server.url("ok") + "/good")
  return dict(proc=proc, out=out, parent=parent, requests=server.requests[before:])


def test_download_verifies_and_prints_the_flags(downloaded, archives):
  flags = succeeded(downloaded["proc"])
  out = downloaded["out"]
  assert flags == {"init_checkpoint": str(out / "model.ckpt-best"),
                   "albert_config_file": str(out / "albert_config.json"),
                   "spm_model_file": str(out / "30k-clean.model"),
                   "vocab_file": str(out / "30k-clean.vocab")}
  assert (out / "checkpoint").read_text().startswith('model_checkpoint_path: "model.ckpt-best"')
  source = archives["checkpoint"]
  for suffix in (".index", ".data-00000-of-00001"):
    assert (out / ("model.ckpt-best" + suffix)).read_bytes() == \
        (source.parent / (source.name + suffix)).read_bytes()
  # One request, the whole file; progress a line per tenth (not a terminal), up to 100%.
  assert [(r["range"], r["status"]) for r in downloaded["requests"]] == [(None, 200)]
  progress = [line for line in downloaded["proc"].stderr.splitlines() if "% (" in line]
  assert progress[0].split(": ")[1].startswith("0%") and "100%" in progress[-1], progress
  # Nothing is left beside the folder: no archive, no part, no unpacking folder.
  assert sorted(p.name for p in downloaded["parent"].iterdir()) == [MODEL]
  assert "variables of the pretraining graph" in downloaded["proc"].stderr


def test_second_run_does_nothing(albert_tree, downloaded, server):
  first = succeeded(downloaded["proc"])
  before = listing(downloaded["parent"])
  requests = len(server.requests)
  proc = download(albert_tree, "--model=" + MODEL, "--output_dir=%s" % downloaded["out"],
                  "--base_url=" + server.url("ok") + "/good")
  assert succeeded(proc) == first
  assert "nothing to do" in proc.stderr
  assert len(server.requests) == requests
  assert listing(downloaded["parent"]) == before


def test_resumes_after_a_dropped_connection(albert_tree, server, archives, tmp_path):
  out = tmp_path / "model"
  args = ("--model=" + MODEL, "--output_dir=%s" % out,
          "--base_url=" + server.url("drop") + "/good")
  proc = download(albert_tree, *args)
  part = tmp_path / ("model.%s.tar.gz.part" % MODEL)
  size = archives["good"].stat().st_size
  assert_refused(proc, tmp_path, {part.name: (DROP_AFTER, part.stat().st_mtime_ns)},
                 "stopped at %d of %d bytes" % (DROP_AFTER, size), "run the same command again")
  before = len(server.requests)
  succeeded(download(albert_tree, *args))
  (resumed,) = server.requests[before:]
  assert resumed["range"] == "bytes=%d-" % DROP_AFTER
  assert (resumed["status"], resumed["sent"]) == (206, size - DROP_AFTER)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_starts_over_when_the_server_ignores_the_range(albert_tree, server, archives,
                                                       tmp_path):
  out = tmp_path / "model"
  (tmp_path / ("model.%s.tar.gz.part" % MODEL)).write_bytes(b"\0" * DROP_AFTER)
  before = len(server.requests)
  proc = download(albert_tree, "--model=" + MODEL, "--output_dir=%s" % out,
                  "--base_url=" + server.url("norange") + "/good")
  succeeded(proc)
  (request,) = server.requests[before:]
  assert request["range"] == "bytes=%d-" % DROP_AFTER and request["status"] == 200
  assert "starting over" in proc.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_file_url_into_an_empty_folder(albert_tree, archives, tmp_path):
  out = tmp_path / "model"
  out.mkdir()
  flags = succeeded(download(albert_tree, "--model=" + MODEL, "--output_dir=%s" % out,
                             "--base_url=" + (archives["root"] / "good").as_uri()))
  assert flags["init_checkpoint"] == str(out / "model.ckpt-best")


def test_sha256_that_matches(albert_tree, server, archives, tmp_path):
  succeeded(download(albert_tree, "--model=" + MODEL, "--output_dir=%s" % (tmp_path / "m"),
                     "--base_url=" + server.url("ok") + "/good",
                     "--sha256=" + archives["digest"].upper()))


def test_chinese_layout_has_no_spm_model_flag(albert_tree, server, tmp_path):
  out = tmp_path / "zh"
  proc = download(albert_tree, "--model=albert_base_zh", "--output_dir=%s" % out,
                  "--base_url=" + server.url("ok") + "/good")
  flags = succeeded(proc)
  assert flags == {"init_checkpoint": str(out / "model.ckpt-best"),
                   "albert_config_file": str(out / "albert_config.json"),
                   "vocab_file": str(out / "vocab_chinese.txt")}
  assert "no sentencepiece model" in proc.stderr


# transformers' WordPiece tokenizer, the oracle: input ids of sentence pairs.
HF_BERT_IDS = """
import json, sys
import transformers
vocab, pairs, seq = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
tokenizer = transformers.BertTokenizer(vocab, do_lower_case=True)
print(json.dumps([tokenizer(a, b, max_length=seq, padding="max_length")["input_ids"]
                  for a, b in pairs]))
"""


def test_chinese_model_fine_tunes_with_its_wordpiece_vocabulary(
    albert_tree, server, tiny_data, hf_env, tmp_path):  # noqa: F811
  """The flags download_pretrained.py prints for a WordPiece model are what
  run_classifier.py takes: it trains from the checkpoint, and tokenizes as transformers'
  BertTokenizer does with the same vocabulary."""
  model = succeeded(download(albert_tree, "--model=albert_base_zh",
                             "--output_dir=%s" % (tmp_path / "zh"),
                             "--base_url=" + server.url("ok") + "/good"))
  out = tmp_path / "mrpc"
  seq = 64  # every pair fits: no truncation, whose order the two could differ in
  proc = run(albert_tree, "run_classifier.py", "--task_name=MRPC",
             "--data_dir=%s" % (tiny_data["dir"] / "glue"), "--output_dir=%s" % out,
             *["--%s=%s" % item for item in model.items()], "--do_lower_case",
             "--max_seq_length=%d" % seq, "--train_batch_size=8", "--eval_batch_size=8",
             "--learning_rate=1e-3", "--train_step=4", "--warmup_step=1",
             "--save_checkpoints_steps=4", "--do_train", "--do_eval", cwd=tmp_path)
  assert_initialized_from_checkpoint(proc.stderr)
  assert last(read_results(out / "eval_results.txt"), "global_step") == 4
  train = [line.split("\t") for line in (tiny_data["dir"] / "glue" / "MRPC" / "train.tsv")
           .read_text(encoding="utf-8").splitlines()[1:]]
  pairs = tmp_path / "pairs.json"
  pairs.write_text(json.dumps([row[3:5] for row in train]), encoding="utf-8")
  expected = json.loads(hf_env.run(HF_BERT_IDS, model["vocab_file"], pairs, seq)
                        .stdout.splitlines()[-1])
  ids = record_input_ids(out / "mrpc_train.tf_record")
  assert len(ids) == len(train)
  assert ids == expected, "run_classifier.py and BertTokenizer give different input ids"
  vocab = (tmp_path / "zh" / "vocab_chinese.txt").read_text(encoding="utf-8").splitlines()
  used = {vocab[i] for row in ids for i in row}
  assert "##s" in used and "[UNK]" not in used, sorted(used)


@pytest.mark.parametrize("script", ["run_classifier.py", "run_race.py"])
def test_fine_tuning_without_a_vocabulary_is_refused(albert_tree, tiny_data, script, tmp_path):
  proc = subprocess.run([sys.executable, str(albert_tree / script), "--data_dir=%s" % tmp_path,
                         "--task_name=MRPC", "--output_dir=%s" % (tmp_path / "out"),
                         "--albert_config_file=%s" % tiny_data["config"]],
                        capture_output=True, text=True, env=download_env(), timeout=600)
  assert proc.returncode != 0
  assert "no vocabulary: pass --spm_model_file" in proc.stderr, proc.stderr[-2000:]
  assert list(tmp_path.iterdir()) == []


def test_list(albert_tree):
  proc = download(albert_tree, "--list")
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.splitlines()
  expected = ["albert_%s_%s" % (s, v) for v in ("v1", "v2", "zh")
              for s in ("base", "large", "xlarge", "xxlarge")]
  assert [line.split()[0] for line in lines] == expected
  assert lines[4].split()[1] == \
      "https://storage.googleapis.com/albert_models/albert_base_v2.tar.gz"


def test_helpfull_lists_the_flags(albert_tree, tmp_path):
  proc = subprocess.run([sys.executable, str(albert_tree / "download_pretrained.py"),
                         "--helpfull"], cwd=tmp_path, capture_output=True, text=True,
                        env=download_env(), timeout=300)
  assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
  own = proc.stdout.split("download_pretrained.py:", 1)[1].split("\n\n", 1)[0]
  for flag in ("--base_url", "--[no]list", "--model", "--output_dir", "--sha256"):
    assert flag in own, own


# ---- refusals: one error line, a non-zero exit, nothing changed --------------


def refused(tree, parent, base_url, *words, model=MODEL, extra=()):
  before = listing(parent)
  proc = download(tree, "--model=" + model, "--output_dir=%s" % (parent / "model"),
                  "--base_url=" + base_url, *extra)
  return assert_refused(proc, parent, before, *words)


def test_unknown_model(albert_tree, server, tmp_path):
  refused(albert_tree, tmp_path, server.url("ok") + "/good", "unknown model 'albert_tiny_v9'",
          model="albert_tiny_v9")


@pytest.mark.parametrize("mode,words", [
    ("error500", ("500",)), ("missing", ("404",)), ("html", ("text/html", "error page")),
    ("tofile", ("redirect from http to file is refused",))])
def test_server_answers(albert_tree, server, tmp_path, mode, words):
  refused(albert_tree, tmp_path, server.url(mode) + "/good", *words)


def test_truncated_archive(albert_tree, server, tmp_path):
  refused(albert_tree, tmp_path, server.url("ok") + "/truncated", "truncated")


def test_sha256_that_differs(albert_tree, server, tmp_path):
  refused(albert_tree, tmp_path, server.url("ok") + "/good", "--sha256", "removed",
          extra=("--sha256=" + "0" * 64,))


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_member(albert_tree, server, tmp_path, kind):
  line = refused(albert_tree, tmp_path, server.url("ok") + "/hostile_" + kind, "member",
                 "nothing was unpacked")
  assert not os.path.lexists("/tmp/albert_absolute_member.txt"), line
  assert not (tmp_path.parent / "escaped.txt").exists()


@pytest.mark.parametrize("variant,words", [
    ("wrong_shapes", ("does not fit albert_config.json", "in the checkpoint")),
    ("missing", ("does not fit albert_config.json", "group_1", "is missing")),
    ("spm_size", ("30k-clean.model has", "vocab_size"))])
def test_model_that_does_not_fit_its_config(albert_tree, server, tmp_path, variant, words):
  refused(albert_tree, tmp_path, server.url("ok") + "/" + variant, *words)


def test_folder_holding_something_else(albert_tree, server, tmp_path):
  (tmp_path / "model").mkdir()
  (tmp_path / "model" / "notes.txt").write_text("mine")
  refused(albert_tree, tmp_path, server.url("ok") + "/good", "not empty")
