"""Downloads a released ALBERT model, checks it, and leaves it ready to fine-tune.

  python download_pretrained.py --model=albert_base_v2 --output_dir=DIR
  python download_pretrained.py --list

The models are those upstream's README publishes: albert_{base,large,xlarge,
xxlarge}_{v1,v2,zh}, each the archive {base_url}/{model}.tar.gz. An archive
holds one folder (albert_base/ and so on) with albert_config.json, the
checkpoint model.ckpt-best.*, and the vocabulary: 30k-clean.model (the
sentencepiece model) and 30k-clean.vocab for English, a WordPiece vocabulary
(a .txt file) and no sentencepiece model for Chinese.

Steps, each of which stops with one `error:` line and DIR as it was:
  download  to DIR.MODEL.tar.gz.part beside DIR, resumed with an HTTP Range
            request when a part is there (started over when the server
            ignores the range); renamed when complete. A redirect to another
            scheme (http to file, https to http) is refused.
  unpack    every member is checked first: no absolute path, nothing outside
            DIR, no link pointing out of it or member reached through a link,
            no device or FIFO. Unpacked into a temporary folder beside DIR.
  verify    the sentencepiece model loads and has vocab_size pieces (or the
            vocabulary file vocab_size lines); every variable albert_config.json
            implies in this tree's pretraining graph is in the checkpoint with
            its shape (checkpoint_variables.py).
  finish    a `checkpoint` file naming the checkpoint is written, the folder
            is moved to DIR, the archive removed, and the flags to pass to the
            fine-tuning scripts are printed on one line.

A second run with the model in DIR does nothing but print that line again.
"""
import hashlib
import http.client
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from absl import app
from absl import flags

BASE_URL = "https://storage.googleapis.com/albert_models"
MODELS = tuple("albert_%s_%s" % (size, version) for version in ("v1", "v2", "zh")
               for size in ("base", "large", "xlarge", "xxlarge"))
# What this script leaves in DIR to recognise the model on a second run.
RECORD = "download_pretrained.json"
CONFIG = "albert_config.json"
CHUNK = 1 << 16

flags.DEFINE_string("model", None, "The released model to download: one of %s." %
                    ", ".join(MODELS))
flags.DEFINE_string("output_dir", None,
                    "Where the model goes: a folder that does not exist yet, is empty, "
                    "or holds this model from an earlier run.")
flags.DEFINE_string("base_url", BASE_URL,
                    "Where the archives are: {base_url}/{model}.tar.gz (http, https or "
                    "file). Upstream's bucket by default; a mirror's URL otherwise.")
flags.DEFINE_string("sha256", None,
                    "The archive's SHA-256 digest (64 hex digits), if you know it: a "
                    "download with another digest is an error.")
flags.DEFINE_bool("list", False, "List the models and their URLs, then exit.")

FLAGS = flags.FLAGS


class Failure(Exception):
  """Stops the script: its message is the one `error:` line."""


def archive_url(base_url, model):
  return "%s/%s.tar.gz" % (base_url.rstrip("/"), model)


# ---- download --------------------------------------------------------------


class _SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
  """Follows a redirect only to a URL of the same scheme as the request's."""

  def http_error_302(self, req, fp, code, msg, headers):
    target = urllib.parse.urljoin(req.full_url,
                                  headers.get("Location") or headers.get("URI") or "")
    before, after = (urllib.parse.urlsplit(u).scheme for u in (req.full_url, target))
    if before != after:
      raise Failure("%s redirects to %s: a redirect from %s to %s is refused" % (
          req.full_url, target, before, after or "(no scheme)"))
    return super().http_error_302(req, fp, code, msg, headers)

  http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class Progress:
  """A tqdm bar on a terminal; otherwise a line at every tenth of the total."""

  def __init__(self, name, total, done):
    self.name, self.total, self.done = name, total, done
    self.bar = None
    self.tenths = -1
    if sys.stderr.isatty():
      import tqdm  # pylint: disable=import-outside-toplevel
      self.bar = tqdm.tqdm(total=total, initial=done, unit="B", unit_scale=True,
                           unit_divisor=1024, desc=name, file=sys.stderr)
    else:
      self._line()

  def update(self, count):
    self.done += count
    if self.bar is not None:
      self.bar.update(count)
    else:
      self._line()

  def _line(self):
    if not self.total:
      return
    tenths = min(10, self.done * 10 // self.total)
    if tenths > self.tenths:
      self.tenths = tenths
      print("%s: %d%% (%.1f of %.1f MB)" % (self.name, 10 * tenths, self.done / 1e6,
                                             self.total / 1e6), file=sys.stderr, flush=True)

  def close(self):
    if self.bar is not None:
      self.bar.close()
    elif not self.total:
      print("%s: %.1f MB" % (self.name, self.done / 1e6), file=sys.stderr, flush=True)


def _open(url, offset):
  """The response to GET URL, from byte OFFSET where OFFSET > 0 (an HTTP range)."""
  request = urllib.request.Request(url)
  if offset:
    request.add_header("Range", "bytes=%d-" % offset)
  opener = urllib.request.build_opener(_SameSchemeRedirects)
  try:
    return opener.open(request, timeout=60)
  except urllib.error.HTTPError as e:
    if e.code == 416 and offset:
      return None  # the part is not a prefix of this file: start over
    raise Failure("%s: the server answered %d %s" % (url, e.code, e.reason)) from None
  except urllib.error.URLError as e:
    raise Failure("cannot download %s: %s" % (url, e.reason)) from None
  except (OSError, http.client.HTTPException) as e:
    raise Failure("cannot download %s: %s" % (url, e)) from None


def _check_content_type(url, response):
  """An HTML, JSON or text answer is an error page, not the archive."""
  content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
  if content_type.startswith("text/") or content_type.endswith(("html", "json", "xml")):
    raise Failure("%s is %s, not a .tar.gz archive (an error page?)" % (url, content_type))


def _resume_range(response, offset):
  """The total size if RESPONSE continues the part at OFFSET (206), else None."""
  if getattr(response, "status", None) != 206:
    return None
  match = re.match(r"bytes (\d+)-(\d+)/(\d+)$", response.headers.get("Content-Range", ""))
  if not match or int(match.group(1)) != offset:
    return None
  return int(match.group(3))


def download(url, target):
  """Downloads URL to TARGET through TARGET.part, resuming the part if there is one."""
  part = target.with_name(target.name + ".part")
  offset = part.stat().st_size if part.exists() else 0
  scheme = urllib.parse.urlsplit(url).scheme
  if scheme not in ("http", "https", "file"):
    raise Failure("%s: only http, https and file URLs are downloaded (--base_url)" % url)
  if scheme == "file":
    offset = 0  # a local copy is quicker started over than resumed
  response = _open(url, offset)
  if response is None:
    offset = 0
    response = _open(url, 0)
  with response:
    _check_content_type(url, response)
    total = _resume_range(response, offset) if offset else None
    if offset and total is None:
      print("%s: the server sent the whole file rather than the rest; starting over" % url,
            file=sys.stderr)
      offset = 0
    if total is None:
      length = response.headers.get("Content-Length")
      total = int(length) if length and length.isdigit() else None
    if offset:
      print("%s: resuming at byte %d of %d" % (url, offset, total), file=sys.stderr)
    received = _copy(url, response, part, offset, total, target.name)
  if total is not None and received < total:
    raise Failure("download of %s stopped at %d of %d bytes (the connection closed); run "
                  "the same command again to resume" % (url, received, total))
  os.replace(part, target)


def _copy(url, response, part, offset, total, name):
  """Writes RESPONSE's body to PART from OFFSET; returns the size PART reaches."""
  progress = Progress(name, total, offset)
  received = offset
  try:
    with open(part, "ab" if offset else "wb") as out:
      while True:
        try:
          chunk = response.read(CHUNK)
        except (http.client.IncompleteRead, OSError) as e:
          if isinstance(e, http.client.IncompleteRead) and e.partial:
            out.write(e.partial)
            received += len(e.partial)
          break
        if not chunk:
          break
        out.write(chunk)
        received += len(chunk)
        progress.update(len(chunk))
  finally:
    progress.close()
  if total is None and received == offset:
    raise Failure("%s sent nothing" % url)
  return received


def sha256_of(path):
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


# ---- unpack ----------------------------------------------------------------


def _outside(path):
  return posixpath.isabs(path) or path == ".." or path.startswith("../")


def member_problem(member, links):
  """Why MEMBER may not be unpacked, or None. LINKS: the symbolic links so far."""
  if posixpath.isabs(member.name):
    return "has an absolute path"
  path = posixpath.normpath(member.name)
  if _outside(path):
    return "would land outside the output directory"
  for link in links:
    if path == link or path.startswith(link + "/"):
      return "is reached through the symbolic link %s" % link
  if member.issym():
    target = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
    if posixpath.isabs(member.linkname) or _outside(target):
      return "is a symbolic link to %s, outside the output directory" % member.linkname
    links.add(path)
  elif member.islnk():
    target = posixpath.normpath(member.linkname)
    if _outside(target) or any(target == link or target.startswith(link + "/") for link in links):
      return "is a hard link to %s, outside the output directory" % member.linkname
  elif member.ischr() or member.isblk() or member.isfifo():
    return "is a device or FIFO"
  elif not (member.isfile() or member.isdir()):
    return "is of a kind that is not unpacked (type %r)" % member.type
  return None


def unpack(archive, url, into):
  """Unpacks ARCHIVE into the empty folder INTO, after checking every member."""
  try:
    with tarfile.open(archive, "r:gz") as tar:
      members = tar.getmembers()
      links = set()
      for member in members:
        problem = member_problem(member, links)
        if problem:
          raise Failure("%s: member %r %s; nothing was unpacked" % (url, member.name, problem))
      # The "data" filter checks the same again as each member is written.
      tar.extractall(into, members, filter="data")
  except tarfile.FilterError as e:
    raise Failure("%s: %s; the archive is refused" % (url, e)) from None
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
    raise Failure("%s is not a complete .tar.gz archive (truncated or corrupt: %s)" % (
        url, e)) from None


def model_folder(root, url):
  """The unpacked folder that holds albert_config.json."""
  found = sorted(p.parent for p in root.rglob(CONFIG) if p.is_file())
  if len(found) != 1:
    raise Failure("%s holds %s %s; a released model holds one" % (
        url, "no" if not found else len(found), CONFIG))
  return found[0]


# ---- verify ----------------------------------------------------------------


def model_files(folder, url):
  """{flag: path} of the checkpoint, config and vocabulary files in FOLDER."""
  indexes = sorted(folder.glob("*.index"))
  if len(indexes) != 1:
    raise Failure("%s holds %d checkpoints (.index files) beside %s; a released model "
                  "holds one" % (url, len(indexes), CONFIG))
  files = {"init_checkpoint": indexes[0].with_suffix(""),
           "albert_config_file": folder / CONFIG}
  spm_models = sorted(folder.glob("*.model"))
  vocabs = sorted(folder.glob("*.vocab")) or sorted(folder.glob("*vocab*.txt"))
  if len(spm_models) > 1 or len(vocabs) > 1:
    raise Failure("%s holds several vocabularies: %s" % (
        url, ", ".join(p.name for p in spm_models + vocabs)))
  if spm_models:
    files["spm_model_file"] = spm_models[0]
  if vocabs:
    files["vocab_file"] = vocabs[0]
  if not spm_models and not vocabs:
    raise Failure("%s holds neither a sentencepiece model (.model) nor a vocabulary "
                  "(.vocab, vocab*.txt)" % url)
  return files


def vocab_size(config_file):
  try:
    size = json.loads(config_file.read_text(encoding="utf-8"))["vocab_size"]
  except (ValueError, KeyError, TypeError) as e:
    raise Failure("%s is not an ALBERT config with a vocab_size (%s)" % (
        config_file.name, e)) from None
  if not isinstance(size, int) or size <= 0:
    raise Failure("%s: vocab_size %r is not a positive integer" % (config_file.name, size))
  return size


def check_vocabulary(files):
  """The sentencepiece model loads and has vocab_size pieces; the vocabulary
  file has vocab_size lines."""
  size = vocab_size(files["albert_config_file"])
  if "spm_model_file" in files:
    import sentencepiece  # pylint: disable=import-outside-toplevel
    path = files["spm_model_file"]
    processor = sentencepiece.SentencePieceProcessor()
    try:
      processor.Load(str(path))
    except (OSError, RuntimeError) as e:
      raise Failure("%s is not a sentencepiece model: %s" % (path.name, e)) from None
    if processor.GetPieceSize() != size:
      raise Failure("%s has %d pieces, but %s says vocab_size %d" % (
          path.name, processor.GetPieceSize(), CONFIG, size))
  if "vocab_file" in files:
    path = files["vocab_file"]
    with open(path, encoding="utf-8", errors="replace") as f:
      lines = sum(1 for _ in f)
    if lines != size:
      raise Failure("%s has %d lines, but %s says vocab_size %d" % (
          path.name, lines, CONFIG, size))


# Run in a child Python: checkpoint_variables imports run_pretraining, whose
# flags (--output_dir among them) would clash with this script's.
_CHECK_PROGRAM = """
import json, sys
sys.path.insert(0, sys.argv[1])
from albert import checkpoint_variables
problems, expected = checkpoint_variables.checkpoint_problems(sys.argv[2], sys.argv[3])
print(json.dumps({"problems": problems, "expected": expected}))
"""


def check_checkpoint(files):
  """Every variable the config implies is in the checkpoint with its shape."""
  tree = os.path.dirname(os.path.abspath(__file__))
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  proc = subprocess.run([sys.executable, "-c", _CHECK_PROGRAM, tree,
                         str(files["albert_config_file"]), str(files["init_checkpoint"])],
                        capture_output=True, text=True, env=env)
  checkpoint = files["init_checkpoint"].name
  if proc.returncode != 0:
    last = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
    raise Failure("checking %s against %s failed: %s" % (checkpoint, CONFIG, last))
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  problems = result["problems"]
  if problems:
    raise Failure("%s does not fit %s: %d of its %d variables are missing or of another "
                  "shape: %s%s" % (checkpoint, CONFIG, len(problems), result["expected"],
                                   "; ".join(problems[:3]),
                                   "; ..." if len(problems) > 3 else ""))
  return result["expected"]


# ---- the output directory --------------------------------------------------


def flags_line(out, files):
  """The fine-tuning scripts' flags for the model in OUT, as one shell line."""
  order = ("init_checkpoint", "albert_config_file", "spm_model_file", "vocab_file")
  return " ".join("--%s=%s" % (flag, shlex.quote(str(out / files[flag])))
                  for flag in order if flag in files)


def read_record(out):
  """What an earlier run recorded in OUT, or None if OUT holds no model of ours."""
  try:
    return json.loads((out / RECORD).read_text(encoding="utf-8"))
  except (OSError, ValueError):
    return None


def already_there(out, model):
  """True if OUT holds MODEL as an earlier run left it; an error if it holds
  something else."""
  if not out.exists():
    return False
  if not out.is_dir():
    raise Failure("--output_dir %s is a file, not a folder" % out)
  record = read_record(out)
  if record is None:
    if any(out.iterdir()):
      raise Failure("--output_dir %s is not empty and holds no model downloaded by this "
                    "script; name a new or empty folder" % out)
    return False
  if record.get("model") != model:
    raise Failure("--output_dir %s holds %s, not %s; name another folder" % (
        out, record.get("model"), model))
  for name, size in record["sizes"].items():
    path = out / name
    if not path.is_file() or path.stat().st_size != size:
      raise Failure("%s in %s is missing or changed since %s was downloaded; remove %s to "
                    "download it again" % (name, out, model, out))
  return True


def finish(folder, out, model, url, digest, files):
  """Writes the checkpoint file and the record into FOLDER, then moves it to OUT."""
  checkpoint = files["init_checkpoint"].name
  (folder / "checkpoint").write_text(
      'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' % (
          checkpoint, checkpoint), encoding="utf-8")
  names = {flag: path.name for flag, path in files.items()}
  sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
  record = dict(model=model, url=url, sha256=digest, files=names, sizes=sizes)
  (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
  if out.exists():
    out.rmdir()  # empty: already_there said so
  os.replace(folder, out)
  return names


def fetch(model, out, base_url, expected_digest):
  """Downloads, unpacks, verifies MODEL into OUT; returns the flags line."""
  if already_there(out, model):
    record = read_record(out)
    print("%s already holds %s (from %s); nothing to do" % (out, model, record["url"]),
          file=sys.stderr)
    return flags_line(out, record["files"])
  url = archive_url(base_url, model)
  archive = out.with_name("%s.%s.tar.gz" % (out.name, model))
  if not archive.exists():
    download(url, archive)
  try:
    digest = sha256_of(archive)
    if expected_digest and digest != expected_digest:
      raise Failure("%s has SHA-256 %s, not %s (--sha256); the download is removed" % (
          url, digest, expected_digest))
    work = Path(tempfile.mkdtemp(prefix=".%s.unpack-" % out.name, dir=out.parent))
    try:
      unpack(archive, url, work)
      folder = model_folder(work, url)
      files = model_files(folder, url)
      check_vocabulary(files)
      count = check_checkpoint(files)
      names = finish(folder, out, model, url, digest, files)
    finally:
      shutil.rmtree(work, ignore_errors=True)
  finally:
    archive.unlink()
  print("%s: %s verified (%d variables of the pretraining graph), archive SHA-256 %s" % (
      out, model, count, digest), file=sys.stderr)
  if "spm_model_file" not in names:
    print("%s has a WordPiece vocabulary and no sentencepiece model: fine-tune it "
          "with run_classifier.py or run_race.py, passing no --spm_model_file (the "
          "SQuAD scripts need a sentencepiece model)" % model, file=sys.stderr)
  return flags_line(out, names)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("unexpected arguments: %s" % " ".join(argv[1:]))
  if FLAGS.list:
    for model in MODELS:
      print("%-18s %s" % (model, archive_url(FLAGS.base_url, model)))
    return
  try:
    if not FLAGS.model:
      raise Failure("--model is required: one of %s (--list shows their URLs)" %
                    ", ".join(MODELS))
    if FLAGS.model not in MODELS:
      raise Failure("unknown model %r (--model): one of %s" % (FLAGS.model, ", ".join(MODELS)))
    if not FLAGS.output_dir:
      raise Failure("--output_dir is required: the folder the model goes to")
    digest = (FLAGS.sha256 or "").lower()
    if digest and not re.fullmatch(r"[0-9a-f]{64}", digest):
      raise Failure("--sha256 %r is not 64 hex digits" % FLAGS.sha256)
    out = Path(os.path.abspath(FLAGS.output_dir))
    if not out.parent.is_dir():
      raise Failure("--output_dir %s: its parent folder does not exist" % out)
    print(fetch(FLAGS.model, out, FLAGS.base_url, digest))
  except Failure as e:
    print("error: %s" % e, file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
