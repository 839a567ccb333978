"""Stage 2, convert: upstream's TF1 code through TensorFlow's own tf_upgrade_v2, as one commit.

The conversion of a given commit by a given TensorFlow release never changes, so its commit is
kept in the cache mirror and reused; the report tf_upgrade_v2 writes is kept beside it.
"""
import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

from . import fetch, git
from .errors import ToolError

MESSAGE = "Convert to TensorFlow 2 with tf_upgrade_v2"
UPGRADE_SCRIPT = Path(__file__).with_name("tf_upgrade.py")
INSTALL_HINT = "run `make setup` (or `pip install tensorflow==2.15.1` in this Python)"


def installed_tensorflow():
  """The installed TensorFlow release, read from package metadata (importing TF takes seconds)."""
  for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-intel"):
    try:
      return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
      continue
  return None


def require_converter():
  version = installed_tensorflow()
  if version is None or importlib.util.find_spec("tensorflow") is None:
    raise ToolError(f"tf_upgrade_v2 is missing: it comes with TensorFlow, which {sys.executable} "
                    f"does not have; {INSTALL_HINT}")
  return version


def converter_warning(version, lock):
  if version != lock.tensorflow:
    return (f"warning: TensorFlow {version} is installed but the series was made with "
            f"tf_upgrade_v2 from {lock.tensorflow}; its conversion may differ and patches may "
            f"not apply ({INSTALL_HINT.replace('2.15.1', lock.tensorflow)})")
  return None


def _cache_ref(commit, version):
  return f"refs/converted/{commit}/tf-{version}"


def report_path(commit, version):
  return fetch.cache_dir() / "reports" / f"{commit}-tf-{version}.txt"


def convert(tree, commit, version, date):
  """Adds the conversion commit on top of `commit` in `tree`; returns (sha, how it was made)."""
  mirror = fetch.mirror()
  ref = _cache_ref(commit, version)
  if git.rev_or_none(mirror, ref):
    git.run(["fetch", "-q", "--no-tags", str(mirror), ref], cwd=tree)
    git.run(["merge", "-q", "--ff-only", "FETCH_HEAD"], cwd=tree)
    return git.rev(tree, "HEAD"), "from cache"
  report = report_path(commit, version)
  report.parent.mkdir(parents=True, exist_ok=True)
  # `tf_upgrade_v2 --intree TREE --inplace --reportfile REPORT`, with the files converted in
  # parallel (tf_upgrade.py): the same tree and report in a third of the time.
  proc = subprocess.run([sys.executable, str(UPGRADE_SCRIPT), str(tree), str(report)],
                        capture_output=True, text=True, cwd=tree)
  if proc.returncode != 0:
    tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
    raise ToolError(f"tf_upgrade_v2 failed ({tail[0] if tail else proc.returncode}); "
                    f"its report is {report}")
  sha = git.commit_all(tree, MESSAGE, date)
  git.checkout_modes(tree)
  git.run(["push", "-q", str(mirror), f"HEAD:{ref}"], cwd=tree)
  return sha, f"tf_upgrade_v2 from TensorFlow {version}, report {report}"


def converted_tree(tree):
  return git.rev(tree, "HEAD^{tree}")
