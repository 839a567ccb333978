"""convert_huggingface.py against transformers itself, for every head that converts.

For each head a tiny model with several hidden groups and inner groups (and one whose
embedding size equals its hidden size) goes both ways:
- TF -> HF: the tree's own head code (run_pretraining.py's heads, classifier_utils.create_model,
  squad_utils.create_v1_model, race_utils.create_model) builds the graph with every variable
  random and saves it as the scripts' Saver does; the script converts it; transformers loads
  the directory with from_pretrained. Both give the same outputs on fixed inputs, in eval mode
  (the configs have dropout, so a side still dropping would differ).
- HF -> TF: transformers saves a random model as save_pretrained does; the script converts it;
  the tree's graph loads it as the scripts load --init_checkpoint, every variable from it.
- Each converted model converted back gives every tensor back, bit for bit.
transformers runs in build/hf-venv (hf_oracle.py), the tree's code in the project's
Python; arrays pass through .npz files.
"""
import concurrent.futures
import json

import numpy as np
import pytest

from .hf_oracle import (HF_LOGITS, HF_RANDOM_MODELS, TF_HEADS, convert, hf_env,  # noqa: F401
                       run_tf, write_jobs)

TOLERANCE = 1e-5
# Two groups of two layers each. (transformers' ALBERT fails with more inner groups than
# layers per group, e.g. 3 layers in 2 groups of 2: its head mask is sliced per group.)
GROUPED = dict(vocab_size=40, embedding_size=8, hidden_size=16, num_hidden_layers=4,
               num_hidden_groups=2, inner_group_num=2, num_attention_heads=2,
               intermediate_size=32, max_position_embeddings=24, type_vocab_size=2,
               hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
               initializer_range=0.02)
# embedding_size == hidden_size: the tree's model has no embedding projection.
SQUARE = dict(GROUPED, embedding_size=16, num_hidden_layers=2, num_hidden_groups=1,
              inner_group_num=1)
# name: (head, config, labels). --head is given where the variables cannot tell.
CASES = {
    "pretraining": ("pretraining", GROUPED, 2),
    "classifier": ("classifier", GROUPED, 3),
    "regression": ("regression", GROUPED, 1),
    "squad_v1": ("squad_v1", GROUPED, 2),
    "race": ("race", GROUPED, 4),
    "classifier_square": ("classifier", SQUARE, 2),
}
EXPLICIT_HEAD = ("regression", "race")
# AlbertForQuestionAnswering has no pooler; run_squad_v1.py's graph has one it does not use.
POOLER = ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]
BATCH, SEQ, PREDICTIONS = 3, 12, 4


def write_inputs(path, config, head, labels, seed):
  """Fixed inputs: random ids, padding at the ends, two segments; [batch, choices, seq]
  for race."""
  rng = np.random.RandomState(seed)
  shape = (BATCH, labels, SEQ) if head == "race" else (BATCH, SEQ)
  ids = rng.randint(0, config["vocab_size"], size=shape).astype(np.int32)
  lengths = rng.randint(SEQ // 2, SEQ + 1, size=shape[:-1])
  mask = (np.arange(SEQ) < lengths[..., None]).astype(np.int32)
  segments = (np.arange(SEQ) >= SEQ // 3).astype(np.int32) * mask
  positions = np.stack([rng.choice(SEQ // 2, PREDICTIONS, replace=False)
                        for _ in range(BATCH)]).astype(np.int32)
  np.savez(path, input_ids=ids * mask, input_mask=mask, segment_ids=segments,
           positions=positions, num_labels=np.array(labels))
  return path


def hf_config(config, head, labels):
  """AlbertConfig's arguments for the same model in transformers."""
  out = dict(config, hidden_act="gelu_new")
  if head in ("classifier", "regression"):
    out["num_labels"] = labels
  if head == "regression":
    out["problem_type"] = "regression"
  return out


def converted(proc):
  assert proc.returncode == 0, proc.stderr[-4000:]
  return proc


def in_pairs(calls):
  """Runs the (function, args) of CALLS two at a time (two cores); their results, in order."""
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    return [f.result() for f in [pool.submit(fn, *args) for fn, args in calls]]


@pytest.fixture(scope="module")
def work(albert_tree, hf_env, tmp_path_factory):  # noqa: F811
  """Every conversion of every case, both ways and back; the paths of what it wrote."""
  root = tmp_path_factory.mktemp("hf-convert")
  tree = albert_tree
  paths = {}
  for name, (head, config, labels) in CASES.items():
    d = root / name
    d.mkdir()
    config_file = d / "albert_config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    paths[name] = dict(dir=d, config=config_file,
                       inputs=write_inputs(d / "inputs.npz", config, head, labels, seed=7))

  def head_flag(name):
    return ["--head=%s" % CASES[name][0]] if name in EXPLICIT_HEAD else []

  # TF -> HF: the tree's graph, random, saved; converted; converted back.
  run_tf(tree, TF_HEADS, write_jobs(root / "tf_init.json", [
      dict(head=CASES[n][0], config=str(p["config"]), inputs=str(p["inputs"]),
           out=str(p["dir"] / "tf.npz"), checkpoint=str(p["dir"] / "tf" / "model.ckpt"),
           init=True, seed=i) for i, (n, p) in enumerate(paths.items())]))
  for proc in in_pairs(
      [(convert, (tree, "--init_checkpoint=%s" % (p["dir"] / "tf" / "model.ckpt"),
                  "--albert_config_file=%s" % p["config"],
                  "--to_hf=%s" % (p["dir"] / "tf_hf"), *head_flag(n)))
       for n, p in paths.items()]):
    converted(proc)
  # HF -> TF: transformers' model, random, saved; converted.
  hf_env.run(HF_RANDOM_MODELS, write_jobs(root / "hf_init.json", [
      dict(dir=str(p["dir"] / "hf"), head=CASES[n][0], seed=i,
           config=hf_config(CASES[n][1], CASES[n][0], CASES[n][2]),
           inputs=str(p["inputs"]), out=str(p["dir"] / "hf.npz"))
      for i, (n, p) in enumerate(paths.items())]))
  for proc in in_pairs(
      [(convert, (tree, "--from_hf=%s" % (p["dir"] / "tf_hf"),
                  "--output_dir=%s" % (p["dir"] / "tf_hf_tf"))) for p in paths.values()]
      + [(convert, (tree, "--from_hf=%s" % (p["dir"] / "hf"),
                    "--output_dir=%s" % (p["dir"] / "hf_tf"))) for p in paths.values()]):
    converted(proc)
  for proc in in_pairs(
      [(convert, (tree, "--init_checkpoint=%s" % (p["dir"] / "hf_tf" / "model.ckpt"),
                  "--albert_config_file=%s" % (p["dir"] / "hf_tf" / "albert_config.json"),
                  "--to_hf=%s" % (p["dir"] / "hf_tf_hf"), *head_flag(n)))
       for n, p in paths.items()]):
    converted(proc)
  # The outputs: transformers from the converted directory, the tree's graph from the
  # converted checkpoint.
  hf_jobs = [dict(dir=str(p["dir"] / "tf_hf"), head=CASES[n][0], inputs=str(p["inputs"]),
                  out=str(p["dir"] / "tf_hf.npz")) for n, p in paths.items()]
  in_pairs([
      (hf_env.run, (HF_LOGITS, write_jobs(root / "hf_logits.json", hf_jobs))),
      (run_tf, (tree, TF_HEADS, write_jobs(root / "tf_restore.json", [
          dict(head=CASES[n][0], config=str(p["dir"] / "hf_tf" / "albert_config.json"),
               inputs=str(p["inputs"]), out=str(p["dir"] / "hf_tf.npz"),
               checkpoint=str(p["dir"] / "hf_tf" / "model.ckpt"), init=False,
               absent=POOLER if CASES[n][0] == "squad_v1" else [])
          for n, p in paths.items()])))])
  return paths


def assert_close(tf_file, hf_file, what):
  tf_out, hf_out = np.load(tf_file), np.load(hf_file)
  assert sorted(tf_out.files) == sorted(hf_out.files)
  for key in tf_out.files:
    a, b = tf_out[key], hf_out[key]
    assert a.shape == b.shape, (what, key, a.shape, b.shape)
    # Outputs of order one: random weights of scale 0.2 make logits of a few units.
    assert np.abs(a).max() > 0.1, (what, key, "outputs too small to tell anything")
    diff = np.abs(a - b).max()
    assert diff <= TOLERANCE, "%s %s: the tree and transformers differ by %.3g" % (
        what, key, diff)


@pytest.mark.parametrize("case", CASES)
def test_tf_checkpoint_gives_transformers_the_same_outputs(work, case):
  p = work[case]
  assert_close(p["dir"] / "tf.npz", p["dir"] / "tf_hf.npz", "TF -> HF, " + case)


@pytest.mark.parametrize("case", CASES)
def test_transformers_model_gives_the_tree_the_same_outputs(work, case):
  p = work[case]
  assert_close(p["dir"] / "hf_tf.npz", p["dir"] / "hf.npz", "HF -> TF, " + case)


def checkpoint_tensors(prefix):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(str(prefix))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def assert_bitwise(before, after, what):
  assert sorted(before) == sorted(after), what
  for name, value in before.items():
    assert value.dtype == after[name].dtype and value.shape == after[name].shape, (what, name)
    assert value.tobytes() == after[name].tobytes(), "%s: %s changed" % (what, name)


@pytest.mark.parametrize("case", CASES)
def test_tf_to_hf_to_tf_is_bitwise(work, case):
  p = work[case]
  before = checkpoint_tensors(p["dir"] / "tf" / "model.ckpt")
  if CASES[case][0] == "squad_v1":
    for name in POOLER:
      del before[name]
  assert_bitwise(before, checkpoint_tensors(p["dir"] / "tf_hf_tf" / "model.ckpt"),
                 "TF -> HF -> TF")
  again = json.loads((p["dir"] / "tf_hf_tf" / "albert_config.json").read_text())
  assert {k: again[k] for k in CASES[case][1]} == CASES[case][1]


@pytest.mark.parametrize("case", CASES)
def test_hf_to_tf_to_hf_is_bitwise(work, case):
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  p = work[case]
  after = load_file(p["dir"] / "hf_tf_hf" / "model.safetensors")
  if CASES[case][0] == "pretraining":
    # Written beside predictions.bias, its tie, which save_pretrained leaves out: without it
    # transformers 4.46 reloads the output bias as zeros.
    assert after.pop("predictions.decoder.bias").tobytes() == after["predictions.bias"].tobytes()
  assert_bitwise(load_file(p["dir"] / "hf" / "model.safetensors"), after, "HF -> TF -> HF")
  before = json.loads((p["dir"] / "hf" / "config.json").read_text())
  after = json.loads((p["dir"] / "hf_tf_hf" / "config.json").read_text())
  keys = [*CASES[case][1], "architectures", "model_type", "layer_norm_eps", "problem_type"]
  assert {k: after.get(k) for k in keys} == {k: before.get(k) for k in keys}
  # transformers writes id2label only where it is not its default of two labels.
  default = {"0": "LABEL_0", "1": "LABEL_1"}
  assert after.get("id2label", default) == before.get("id2label", default)
