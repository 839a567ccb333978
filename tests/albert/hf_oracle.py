"""HuggingFace transformers as the oracle of the conversion tests, and the tree's heads beside it.

`hf_env`: build/hf-venv (`make hf-env`, requirements-hf.txt: torch on the CPU, transformers
4.46), where transformers runs in a subprocess; never in the project's .venv. `TF_HEADS` builds
each script's head from the tree's own code in a subprocess of the project's Python.
Both sides read their jobs from a JSON file and exchange arrays through .npz files.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ..conftest import PROJECT
from .tree import make_venv

HF_VENV = PROJECT / "build" / "hf-venv"
THREADS = dict(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               TF_NUM_INTRAOP_THREADS="1")


def _checked(proc):
  if proc.returncode != 0:
    pytest.fail(f"{' '.join(map(str, proc.args[:2]))} ... exited {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")
  return proc


class HfEnv:
  """build/hf-venv's Python, run offline with one thread."""

  def __init__(self, root):
    self.python = root / "bin" / "python"

  def run(self, code, *args, timeout=600):
    # USE_TF=0: transformers leaves TensorFlow alone unless code imports it, as
    # load_tf_weights_in_albert does.
    env = dict(os.environ, **THREADS, TRANSFORMERS_OFFLINE="1", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error", USE_TF="0")
    env.pop("PYTHONPATH", None)
    return _checked(subprocess.run([str(self.python), "-c", code, *map(str, args)], env=env,
                                   capture_output=True, text=True, timeout=timeout))


@pytest.fixture(scope="session")
def hf_env():
  """The hf venv, made with `make hf-env` if it is not there yet (see make_venv)."""
  make_venv(PROJECT, "hf-env", HF_VENV, "torch and transformers", 1800)
  return HfEnv(HF_VENV)


def record_input_ids(path):
  """input_ids of each example in a TFRecord file a fine-tuning script wrote, to set beside
  what transformers' tokenizer makes of the same text."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return [list(tf.train.Example.FromString(raw.numpy()).features.feature["input_ids"]
               .int64_list.value) for raw in tf.data.TFRecordDataset(str(path))]


def run_tf(tree, code, *args, timeout=600):
  """CODE in the project's Python with TREE importable as the scripts import it."""
  env = dict(os.environ, **THREADS, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("PYTHONPATH", None)
  return _checked(subprocess.run([sys.executable, "-c", code, str(tree), *map(str, args)],
                                 env=env, capture_output=True, text=True, timeout=timeout))


def convert(tree, *args, env=None):
  """`python TREE/convert_huggingface.py ARGS`, as a user runs it; the finished process."""
  env = dict(env or os.environ, **THREADS)
  env.pop("PYTHONPATH", None)
  return subprocess.run([sys.executable, str(Path(tree) / "convert_huggingface.py"),
                         *map(str, args)], env=env, capture_output=True, text=True,
                        timeout=600)


def write_jobs(path, jobs):
  Path(path).write_text(json.dumps(jobs, indent=1), encoding="utf-8")
  return path


# transformers' class of each head, and its outputs as the tree's heads give them: masked-LM
# log-probabilities at "positions" and sentence-order ones, logits, or start and end logits.
# Inputs (.npz): input_ids, input_mask, segment_ids ([batch, choices, seq] for race), positions.
HF_OUTPUTS = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import torch
    import transformers
    CLASSES = {"pretraining": "AlbertForPreTraining", "classifier":
               "AlbertForSequenceClassification", "regression": "AlbertForSequenceClassification",
               "squad_v1": "AlbertForQuestionAnswering", "race": "AlbertForMultipleChoice"}
    torch.set_num_threads(1)

    def save_outputs(model, head, inputs, out):
      model.eval()
      x = np.load(inputs)
      feed = dict(input_ids=torch.from_numpy(x["input_ids"].astype(np.int64)),
                  attention_mask=torch.from_numpy(x["input_mask"].astype(np.int64)),
                  token_type_ids=torch.from_numpy(x["segment_ids"].astype(np.int64)))
      with torch.no_grad():
        y = model(**feed)
      if head == "pretraining":
        log_probs = torch.log_softmax(y.prediction_logits, -1)
        positions = torch.from_numpy(x["positions"].astype(np.int64))
        picked = torch.stack([log_probs[b, positions[b]] for b in range(len(positions))])
        result = {"mlm_log_probs": picked.reshape(-1, picked.shape[-1]),
                  "sop_log_probs": torch.log_softmax(y.sop_logits, -1)}
      elif head == "squad_v1":
        result = {"start_logits": y.start_logits, "end_logits": y.end_logits}
      elif head == "regression":
        result = {"logits": y.logits[:, 0]}
      else:
        result = {"logits": y.logits}
      np.savez(out, **{k: v.numpy() for k, v in result.items()})
''')

# from_pretrained on each directory, then its outputs. Jobs: {"dir", "head", "inputs", "out"}.
HF_LOGITS = HF_OUTPUTS + textwrap.dedent(r'''
    for job in json.load(open(sys.argv[1])):
      model = getattr(transformers, CLASSES[job["head"]]).from_pretrained(job["dir"])
      save_outputs(model, job["head"], job["inputs"], job["out"])
''')

# A transformers model of each head with every parameter random, saved as save_pretrained
# saves it, and the outputs of the model as it was saved. (They are not those of the model
# from_pretrained reloads: transformers 4.46 reloads the masked-LM output bias of a file it
# wrote as zeros.) Jobs: {"dir", "head", "config": AlbertConfig's arguments, "seed",
# "inputs", "out"}, and "safetensors": false for a pytorch_model.bin.
HF_RANDOM_MODELS = HF_OUTPUTS + textwrap.dedent(r'''
    for job in json.load(open(sys.argv[1])):
      torch.manual_seed(job["seed"])
      config = transformers.AlbertConfig(**job["config"])
      model = getattr(transformers, CLASSES[job["head"]])(config)
      with torch.no_grad():
        for name, p in model.named_parameters():
          if "LayerNorm" in name and name.endswith("weight"):
            p.copy_(1 + 0.2 * torch.randn_like(p))
          else:
            p.copy_(0.2 * torch.randn_like(p))
        if config.embedding_size == config.hidden_size:
          # The tree projects the embeddings only between different sizes: the identity.
          mapping = model.albert.encoder.embedding_hidden_mapping_in
          mapping.weight.copy_(torch.eye(config.hidden_size))
          mapping.bias.zero_()
      model.save_pretrained(job["dir"], safe_serialization=job.get("safetensors", True))
      if "out" in job:
        save_outputs(model, job["head"], job["inputs"], job["out"])
''')

# The tree's heads, as the scripts build them, with is_training=False (no dropout).
# Jobs: {"head", "config", "inputs", "out", "checkpoint", "init"}: with "init", every
# variable gets random values and the graph is saved to "checkpoint" (as the scripts' Saver
# saves); without, the graph loads "checkpoint" as the scripts load --init_checkpoint, and
# every variable but those listed in "absent" must come from it.
TF_HEADS = textwrap.dedent(r'''
    import importlib.util, json, os, sys
    import numpy as np
    import tensorflow as tf
    tree, jobs = sys.argv[1:3]
    sys.path.insert(0, tree)
    from albert import classifier_utils, modeling, race_utils, squad_utils
    assert modeling.__file__.startswith(tree), modeling.__file__
    spec = importlib.util.spec_from_file_location("run_pretraining",
                                                  os.path.join(tree, "run_pretraining.py"))
    run_pretraining = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_pretraining)

    def build(head, config, x):
      ids, mask, seg = (tf.constant(x[k]) for k in ("input_ids", "input_mask", "segment_ids"))
      batch = x["input_ids"].shape[0]
      labels = tf.zeros([batch], tf.int32)
      if head == "pretraining":
        # run_pretraining.py's model_fn: the encoder, then the two heads.
        model = modeling.AlbertModel(config=config, is_training=False, input_ids=ids,
                                     input_mask=mask, token_type_ids=seg,
                                     use_one_hot_embeddings=False, use_einsum=True)
        positions = tf.constant(x["positions"])
        _, _, mlm = run_pretraining.get_masked_lm_output(
            config, model.get_sequence_output(), model.get_embedding_table(), positions,
            tf.zeros_like(positions), tf.ones(positions.shape, tf.float32))
        _, _, sop = run_pretraining.get_sentence_order_output(
            config, model.get_pooled_output(), labels)
        return {"mlm_log_probs": mlm, "sop_log_probs": sop}
      if head in ("classifier", "regression"):
        num_labels = x["num_labels"].item()
        task = "sts-b" if head == "regression" else "mrpc"
        labels = tf.zeros([batch], tf.float32) if head == "regression" else labels
        _, _, _, logits, _ = classifier_utils.create_model(
            config, False, ids, mask, seg, labels, num_labels, False, task, None)
        return {"logits": logits}
      if head == "squad_v1":
        start, end = squad_utils.create_v1_model(config, False, ids, mask, seg, False, True,
                                                 None)
        return {"start_logits": start, "end_logits": end}
      if head == "race":
        choices, seq = x["input_ids"].shape[1:]
        _, _, _, logits, _ = race_utils.create_model(
            config, False, ids, mask, seg, labels, choices, False, seq, 0.1, None)
        return {"logits": logits}
      if head == "squad_v2":
        # run_squad_v2.py's head: variables only (no counterpart to compare with).
        squad_utils.create_v2_model(config, False, ids, mask, seg, False,
                                    {"p_mask": tf.zeros_like(ids)}, x["input_ids"].shape[1],
                                    2, 2, 0.1, None)
        return {}
      raise ValueError(head)

    for job in json.load(open(jobs)):
      x = dict(np.load(job["inputs"]))
      config = modeling.AlbertConfig.from_json_file(job["config"])
      with tf.Graph().as_default():
        outputs = build(job["head"], config, x)
        variables = tf.compat.v1.global_variables()
        if job["init"]:
          rng = np.random.RandomState(job["seed"])
          values = {}
          for v in variables:
            value = rng.normal(0, 0.2, v.shape.as_list())
            values[v.initial_value] = value + 1 if v.name.endswith("/gamma:0") else value
          with tf.compat.v1.Session() as sess:
            sess.run([v.initializer for v in variables], feed_dict=values)
            tf.compat.v1.train.Saver(variables).save(sess, job["checkpoint"])
            result = sess.run(outputs)
        else:
          # As the scripts take --init_checkpoint: every variable must come from it.
          assignment, loaded = modeling.get_assignment_map_from_checkpoint(
              variables, job["checkpoint"])
          missing = [v.name.split(":")[0] for v in variables
                     if v.name.split(":")[0] not in loaded]
          assert sorted(missing) == sorted(job.get("absent", [])), missing
          tf.compat.v1.train.init_from_checkpoint(job["checkpoint"], assignment)
          with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            result = sess.run(outputs)
      np.savez(job["out"], **result)
''')
