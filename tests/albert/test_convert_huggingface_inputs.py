"""convert_huggingface.py on what users bring: transformers' own TF loader, .bin files, bad input.

- transformers.load_tf_weights_in_albert, written against the released TF checkpoints, reads
  a checkpoint of run_pretraining.py (tiny_pretrained: the script's real output, optimizer
  slots and all) into the same tensors as the script's --to_hf directory: the evidence that
  the script reads released checkpoints as transformers does.
- A pytorch_model.bin converts where PyTorch is (build/hf-venv) to the same checkpoint as
  the model's safetensors, and is refused in one line where it is not (.venv).
- Every bad input: one `error:` line naming it, a non-zero exit, and the output directory as
  it was (absent, or untouched) with nothing left beside it.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from .hf_oracle import (HF_RANDOM_MODELS, TF_HEADS, THREADS, convert, hf_env,  # noqa: F401
                        run_tf, write_jobs)
from .test_convert_huggingface import GROUPED, checkpoint_tensors, write_inputs

# transformers' TF loader and from_pretrained on the script's directory: every parameter
# of both models, compared bit for bit. Prints the differing names as JSON.
HF_TF_LOADER = textwrap.dedent(r'''
    import json, sys
    import torch
    import transformers
    checkpoint, directory = sys.argv[1:3]
    config = transformers.AlbertConfig.from_pretrained(directory)
    theirs = transformers.AlbertForPreTraining(config)
    transformers.load_tf_weights_in_albert(theirs, config, checkpoint)
    ours = transformers.AlbertForPreTraining.from_pretrained(directory)
    a, b = theirs.state_dict(), ours.state_dict()
    differ = sorted(k for k in a if not torch.equal(a[k], b[k]))
    print(json.dumps({"compared": len(a), "keys_equal": sorted(a) == sorted(b),
                      "differ": differ}))
''')


def test_transformers_tf_loader_reads_pretraining_output_as_the_script_does(
    albert_tree, tiny_data, tiny_pretrained, hf_env, tmp_path):  # noqa: F811
  out = tmp_path / "hf"
  proc = convert(albert_tree, "--init_checkpoint=%s" % tiny_pretrained["checkpoint"],
                 "--albert_config_file=%s" % tiny_data["config"],
                 "--spm_model_file=%s" % tiny_data["spm_model"], "--to_hf=%s" % out)
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert "AlbertForPreTraining" in proc.stdout
  result = json.loads(hf_env.run(HF_TF_LOADER, tiny_pretrained["checkpoint"],
                                 out).stdout.splitlines()[-1])
  assert result["keys_equal"] and result["compared"] > 20, result
  assert result["differ"] == [], result


@pytest.fixture(scope="module")
def models(albert_tree, hf_env, tiny_data, tmp_path_factory):  # noqa: F811
  """A classifier and a run_squad_v2.py checkpoint from the tree's code; a transformers
  classifier saved as model.safetensors and as pytorch_model.bin; a sentencepiece model of
  another vocabulary size."""
  root = tmp_path_factory.mktemp("hf-inputs")
  config = root / "albert_config.json"
  config.write_text(json.dumps(GROUPED), encoding="utf-8")
  jobs = []
  for head in ("classifier", "squad_v2"):
    inputs = write_inputs(root / (head + ".npz"), GROUPED, head, 2, seed=3)
    jobs.append(dict(head=head, config=str(config), inputs=str(inputs),
                     out=str(root / (head + "_out.npz")),
                     checkpoint=str(root / head / "model.ckpt"), init=True, seed=5))
  run_tf(albert_tree, TF_HEADS, write_jobs(root / "tf.json", jobs))
  hf_config = dict(GROUPED, hidden_act="gelu_new", num_labels=2)
  hf_env.run(HF_RANDOM_MODELS, write_jobs(root / "hf.json", [
      dict(dir=str(root / name), head=head, config=hf_config, seed=9,
           safetensors=name != "hf_bin")
      for name, head in (("hf", "classifier"), ("hf_bin", "classifier"),
                         ("hf_squad", "squad_v1"))]))
  return dict(root=root, config=config, classifier=root / "classifier" / "model.ckpt",
              squad_v2=root / "squad_v2" / "model.ckpt", hf=root / "hf",
              hf_bin=root / "hf_bin", hf_squad=root / "hf_squad",
              spm_model=tiny_data["spm_model"])


def test_pytorch_bin_converts_where_torch_is(albert_tree, models, hf_env, tmp_path):  # noqa: F811
  """The script run by build/hf-venv's Python (which has PyTorch) on a .bin."""
  env = dict(os.environ, **THREADS)
  env.pop("PYTHONPATH", None)
  for name in ("hf", "hf_bin"):
    proc = subprocess.run([str(hf_env.python), str(albert_tree / "convert_huggingface.py"),
                           "--from_hf=%s" % models[name], "--output_dir=%s" % (tmp_path / name)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
  from_bin = checkpoint_tensors(tmp_path / "hf_bin" / "model.ckpt")
  from_safetensors = checkpoint_tensors(tmp_path / "hf" / "model.ckpt")
  assert sorted(from_bin) == sorted(from_safetensors)
  for name, value in from_safetensors.items():
    assert np.array_equal(value, from_bin[name]), name


def test_span_model_with_a_pooler_keeps_it(albert_tree, models, tmp_path):
  """A span head file that still has the encoder's pooler (transformers ignores it): the
  tree's graph has one, so it goes into the checkpoint rather than being refused."""
  from safetensors.numpy import load_file, save_file  # pylint: disable=import-outside-toplevel
  source = tmp_path / "hf"
  shutil.copytree(models["hf_squad"], source)
  tensors = load_file(source / "model.safetensors")
  assert "albert.pooler.weight" not in tensors
  rng = np.random.RandomState(0)
  size = GROUPED["hidden_size"]
  tensors["albert.pooler.weight"] = rng.normal(size=(size, size)).astype(np.float32)
  tensors["albert.pooler.bias"] = rng.normal(size=size).astype(np.float32)
  save_file(tensors, source / "model.safetensors", metadata={"format": "pt"})
  proc = convert(albert_tree, "--from_hf=%s" % source, "--output_dir=%s" % (tmp_path / "tf"))
  assert proc.returncode == 0, proc.stderr[-4000:]
  variables = checkpoint_tensors(tmp_path / "tf" / "model.ckpt")
  assert np.array_equal(variables["bert/pooler/dense/kernel"], tensors["albert.pooler.weight"].T)
  assert np.array_equal(variables["bert/pooler/dense/bias"], tensors["albert.pooler.bias"])
  assert "cls/squad/output_weights" in variables


def snapshot(path):
  """Every file under PATH with its bytes, or None where PATH is absent."""
  if not os.path.lexists(path):
    return None
  if not path.is_dir():
    return path.read_bytes()
  return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
          for p in sorted(path.rglob("*"))}


def broken_hf_dir(models, tmp_path, kind):
  """A copy of the transformers classifier with one thing wrong."""
  d = tmp_path / ("hf_" + kind)
  shutil.copytree(models["hf_bin" if kind == "bin" else "hf"], d)
  if kind == "spm_mismatch":
    shutil.copy(models["spm_model"], d / "spiece.model")  # 300 pieces, vocab_size 40
  config = json.loads((d / "config.json").read_text())
  if kind == "no_config":
    (d / "config.json").unlink()
  elif kind == "no_weights":
    (d / "model.safetensors").unlink()
  elif kind == "vocab_mismatch":
    config["vocab_size"] += 1
  elif kind == "groups_mismatch":
    config["num_hidden_groups"] = 1
  elif kind == "token_classifier":
    config["architectures"] = ["AlbertForTokenClassification"]
  elif kind == "not_json":
    (d / "config.json").write_text("{not json", encoding="utf-8")
  if kind in ("vocab_mismatch", "groups_mismatch", "token_classifier"):
    (d / "config.json").write_text(json.dumps(config), encoding="utf-8")
  return d


# (case, what the error line must name)
FROM_HF_BAD = [
    ("missing_dir", "no such directory"),
    ("no_config", "config.json: no such file"),
    ("not_json", "not a readable JSON file"),
    ("no_weights", "has no model.safetensors or pytorch_model.bin"),
    ("vocab_mismatch", "embeddings.word_embeddings.weight has shape"),
    ("groups_mismatch", "albert_layer_groups.1"),
    ("token_classifier", "AlbertForTokenClassification has no counterpart"),
    ("bin", "reading it needs PyTorch"),
    ("spm_mismatch", "spiece.model has"),
]

TO_HF_BAD = [
    ("missing_checkpoint", "no checkpoint there"),
    ("checkpoint_dir", "is a directory; name a checkpoint in it by its prefix"),
    ("missing_config", "albert_config.json: no such file"),
    ("config_mismatch", "bert/embeddings/word_embeddings has shape"),
    ("groups_mismatch", "group_2/inner_group_0"),
    ("squad_v2", "run_squad_v2.py's head"),
    ("head_squad_v2", "run_squad_v2.py's head"),
    ("unknown_head", "--head=span: not a head"),
    ("classifier_as_race", "--head=race"),
    ("missing_spm", "--spm_model_file"),
    ("spm_mismatch", "pieces, --albert_config_file's vocab_size is 40"),
]


def assert_one_error(proc, names):
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert proc.returncode != 0, proc.stderr
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
  assert names in lines[0], lines[0]


# Cases that fail only after reading the input: run into an empty output directory too.
LATE = ("vocab_mismatch", "groups_mismatch", "bin", "config_mismatch", "squad_v2",
        "classifier_as_race", "spm_mismatch")


def cases(table):
  return [pytest.param(case, names, existing, id="%s-%s" % (case, existing))
          for case, names in table
          for existing in (("absent", "empty") if case in LATE else ("absent",))]


def check_refused(tree, args, out, names, existing, tmp_path):
  """ARGS with output OUT (absent, or an empty directory): one error line naming NAMES,
  and tmp_path as it was."""
  if existing == "empty":
    out.mkdir()
  before = snapshot(tmp_path)
  proc = convert(tree, *args)
  assert_one_error(proc, names)
  assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case,names,existing", cases(FROM_HF_BAD))
def test_bad_from_hf_input(albert_tree, models, tmp_path, case, names, existing):
  source = tmp_path / "absent" if case == "missing_dir" else broken_hf_dir(
      models, tmp_path, case)
  out = tmp_path / "out"
  check_refused(albert_tree, ["--from_hf=%s" % source, "--output_dir=%s" % out], out, names,
                existing, tmp_path)


def to_hf_args(models, tmp_path, case):
  ckpt, config, extra = models["classifier"], models["config"], []
  if case == "missing_checkpoint":
    ckpt = tmp_path / "nothing" / "model.ckpt-5"
  elif case == "checkpoint_dir":
    ckpt = tmp_path / "run"
    ckpt.mkdir()
    # A directory's `checkpoint` file names a path; the script follows no such path.
    (ckpt / "checkpoint").write_text('model_checkpoint_path: "%s"\n' % models["classifier"])
  elif case == "missing_config":
    config = tmp_path / "albert_config.json"
  elif case in ("config_mismatch", "groups_mismatch"):
    config = tmp_path / "albert_config.json"
    changed = dict(GROUPED, num_hidden_groups=4) if case == "groups_mismatch" else dict(
        GROUPED, vocab_size=41)
    config.write_text(json.dumps(changed))
  elif case == "squad_v2":
    ckpt = models["squad_v2"]
  elif case == "head_squad_v2":
    extra = ["--head=squad_v2"]
  elif case == "unknown_head":
    extra = ["--head=span"]
  elif case == "classifier_as_race":
    extra = ["--head=race"]
  elif case == "missing_spm":
    extra = ["--spm_model_file=%s" % (tmp_path / "spiece.model")]
  elif case == "spm_mismatch":
    extra = ["--spm_model_file=%s" % models["spm_model"]]
  return ["--init_checkpoint=%s" % ckpt, "--albert_config_file=%s" % config, *extra]


@pytest.mark.parametrize("case,names,existing", cases(TO_HF_BAD))
def test_bad_to_hf_input(albert_tree, models, tmp_path, case, names, existing):
  out = tmp_path / "out"
  check_refused(albert_tree, [*to_hf_args(models, tmp_path, case), "--to_hf=%s" % out], out,
                names, existing, tmp_path)


@pytest.mark.parametrize("direction", ["from_hf", "to_hf"])
def test_output_directory_with_files_is_refused(albert_tree, models, tmp_path, direction):
  """Good input, but the output directory holds a file: refused, the file kept."""
  out = tmp_path / "out"
  out.mkdir()
  (out / "keep.txt").write_text("mine")
  if direction == "from_hf":
    args = ["--from_hf=%s" % models["hf"], "--output_dir=%s" % out]
  else:
    args = [*to_hf_args(models, tmp_path, "good"), "--to_hf=%s" % out]
  before = snapshot(tmp_path)
  assert_one_error(convert(albert_tree, *args), "exists and is not an empty directory")
  assert snapshot(tmp_path) == before


def test_helpfull_lists_the_flags(albert_tree, tmp_path):
  """The script runs directly, from anywhere, with absl's --helpfull."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, str(albert_tree / "convert_huggingface.py"),
                         "--helpfull"], cwd=tmp_path, env=env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-4000:]
  own = proc.stdout.split("convert_huggingface.py:", 1)[1]
  for flag in ("--from_hf", "--output_dir", "--init_checkpoint", "--albert_config_file",
               "--to_hf", "--spm_model_file", "--head", "--[no]do_lower_case"):
    assert "\n  %s:" % flag in own, flag
