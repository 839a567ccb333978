"""`tf_upgrade_v2 --intree TREE --inplace --reportfile REPORT`, with its files converted in
parallel.

Run by convert.py in a process of its own: `python tf_upgrade.py TREE REPORT`. It drives
TensorFlow's own converter (ast_edits.ASTCodeUpgrader with tf_upgrade_v2's TFAPIChangeSpec, as
tf_upgrade_v2_main sets them up by default) over the same files in the same order, and writes
the same report. Two things make it faster than the command:
- the converter is pure Python, but importing it the usual way runs TensorFlow's `__init__`,
  which takes most of a conversion's time; its package is reached by path instead;
- each file is converted on its own, by a pool of one process per CPU.
"""
import importlib.util
import multiprocessing
import os
import sys
import types


def _import_converter():
  """tensorflow.tools.compatibility's ast_edits and tf_upgrade_v2, without importing TensorFlow.

  Only for this script's own process: it puts bare `tensorflow` packages in sys.modules.
  """
  spec = importlib.util.find_spec("tensorflow")
  if spec is None or spec.origin is None:
    sys.exit("error: TensorFlow is not installed in %s" % sys.executable)
  path = os.path.dirname(spec.origin)
  for name in ("tensorflow", "tensorflow.tools", "tensorflow.tools.compatibility"):
    if name != "tensorflow":
      path = os.path.join(path, name.rsplit(".", 1)[1])
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
  # pylint: disable=import-outside-toplevel
  from tensorflow.tools.compatibility import ast_edits, tf_upgrade_v2
  return ast_edits, tf_upgrade_v2


# The converter, set up before the pool's processes fork from this one.
UPGRADER = None


def make_upgrader():
  """tf_upgrade_v2_main's default mode: no import rename, compat.v1 imports upgraded."""
  ast_edits, tf_upgrade_v2 = _import_converter()
  return ast_edits.ASTCodeUpgrader(
      tf_upgrade_v2.TFAPIChangeSpec(import_rename=False, upgrade_compat_v1_import=True))


def convert_file(path):
  """(report text, errors) of converting PATH in place."""
  _, report, errors = UPGRADER.process_file(path, path)
  return report, errors


def python_files(tree):
  """The .py files in os.walk order, as ASTCodeUpgrader.process_tree_inplace lists them."""
  files = []
  for dir_name, _, names in os.walk(tree):
    files += [os.path.join(dir_name, name) for name in names if name.endswith(".py")]
  return files


def upgrade_tree(tree, report_path):
  global UPGRADER  # pylint: disable=global-statement
  UPGRADER = make_upgrader()
  files = python_files(tree)
  converted = [path for path in files if not os.path.islink(path)]
  workers = max(1, min(os.cpu_count() or 1, len(converted)))
  with multiprocessing.get_context("fork").Pool(workers) as pool:
    results = dict(zip(converted, pool.map(convert_file, converted, chunksize=1)))
  details = "=" * 80 + "\n" + "Input tree: %r\n" % tree + "=" * 80 + "\n"
  for path in files:
    details += results[path][0] if path in results else "Skipping symlink %s.\n" % path
  issues = []
  for path in converted:
    errors = results[path][1]
    if errors:
      issues += ["-" * 80 + "\n", "File: %s\n" % path, "-" * 80 + "\n",
                 "\n".join(errors) + "\n"]
  summary = ("TensorFlow 2.0 Upgrade Script\n-----------------------------\n"
             "Converted %d files\n" % len(converted) +
             "Detected %d issues that require attention\n" % sum(
                 len(results[path][1]) for path in converted) + "-" * 80 + "\n")
  with open(report_path, "w", encoding="utf-8") as report:
    report.write(summary + "".join(issues))
    report.write("=" * 80 + "\n" + "Detailed log follows:\n\n" + "=" * 80 + "\n")
    report.write(details)


if __name__ == "__main__":
  upgrade_tree(sys.argv[1], sys.argv[2])
