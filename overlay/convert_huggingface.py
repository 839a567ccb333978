# coding=utf-8
"""Converts ALBERT between this tree's TensorFlow checkpoints and HuggingFace's format.

Two directions, one command each:

  convert_huggingface.py --from_hf=DIR --output_dir=OUT
    DIR is a transformers ALBERT directory (config.json, model.safetensors or
    pytorch_model.bin, spiece.model if it has one). OUT gets model.ckpt, a
    `checkpoint` file, albert_config.json and spiece.model/spiece.vocab: what
    the tree's scripts take as --init_checkpoint, --albert_config_file,
    --spm_model_file and --vocab_file.

  convert_huggingface.py --init_checkpoint=CKPT --albert_config_file=CFG --to_hf=DIR
    CKPT is a checkpoint the tree's scripts wrote (or a released one). DIR gets
    config.json and model.safetensors that `transformers`' from_pretrained
    loads, and spiece.model with a tokenizer configuration when
    --spm_model_file is given.

The head follows the checkpoint: run_pretraining.py's masked-LM and sentence
order heads (AlbertForPreTraining, or AlbertForMaskedLM without the latter),
run_classifier.py's (AlbertForSequenceClassification), run_squad_v1.py's span
head (AlbertForQuestionAnswering, which has no pooler: the checkpoint's, unused by
the head, is left out), run_race.py's choice head
(AlbertForMultipleChoice), or none (AlbertModel). run_classifier.py's STS-B
head and run_race.py's head have the same single-row variables, so such a
checkpoint needs --head=regression or --head=race. run_squad_v2.py's head
(start and end logits conditioned on each other, and an answer classifier)
has no counterpart in transformers.

Weights are copied, never recomputed: a kernel is transposed into a torch
Linear weight and back, so TF -> HF -> TF and HF -> TF -> HF give back every
tensor bit for bit. safetensors files are read and written through the
`safetensors` package's numpy API; PyTorch is needed only to read a
pytorch_model.bin. Only the files named above are read: nothing in a config
file leads the script to another path. The output appears complete or not at
all: it is written beside its destination and moved into place at the end.
"""
import json
import os
import shutil
import sys
import tempfile

# TensorFlow's start-up chatter (errors about CUDA plugins included) would bury the one line
# a bad input gets.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "from_hf", None,
    "A transformers ALBERT directory to convert into a TensorFlow checkpoint "
    "in --output_dir: config.json, model.safetensors (or pytorch_model.bin, "
    "which needs PyTorch), and spiece.model when it has one.")
flags.DEFINE_string(
    "output_dir", None,
    "With --from_hf: the directory to create (absent or empty) for "
    "model.ckpt, albert_config.json and the sentencepiece files.")
flags.DEFINE_string(
    "init_checkpoint", None,
    "With --to_hf: the TensorFlow checkpoint to convert, as the scripts name "
    "it (a prefix such as OUT/model.ckpt-2000, without .index).")
flags.DEFINE_string(
    "albert_config_file", None,
    "With --to_hf: the albert_config.json the checkpoint was trained with.")
flags.DEFINE_string(
    "to_hf", None,
    "The directory to create (absent or empty) for transformers: "
    "config.json, model.safetensors, and the tokenizer files with "
    "--spm_model_file.")
flags.DEFINE_string(
    "spm_model_file", None,
    "With --to_hf: the sentencepiece model to ship as spiece.model.")
flags.DEFINE_bool(
    "do_lower_case", True,
    "With --to_hf and --spm_model_file: whether the tokenizer lower-cases "
    "(the scripts' --do_lower_case; true for the released models).")
flags.DEFINE_string(
    "head", "auto",
    "With --to_hf: which script's head the checkpoint holds. auto (from the "
    "variables), pretraining, classifier, regression (run_classifier.py's "
    "STS-B), squad_v1, race, or none (the encoder alone).")

# The tree's layer norm (custom_layer_norm.py, contrib's) and activation.
LAYER_NORM_EPS = 1e-12
# TF's `gelu` is the tanh approximation, transformers' `gelu_new`.
HF_ACTIVATION = {"gelu": "gelu_new", "relu": "relu", "tanh": "tanh", "linear": "linear"}
TF_ACTIVATION = {"gelu_new": "gelu", "relu": "relu", "tanh": "tanh", "linear": "linear"}

# albert_config.json's keys and their defaults where the HF config may lack one.
TF_CONFIG_KEYS = (
    ("vocab_size", None), ("embedding_size", None), ("hidden_size", None),
    ("num_hidden_layers", None), ("num_hidden_groups", 1), ("num_attention_heads", None),
    ("intermediate_size", None), ("inner_group_num", 1), ("hidden_act", "gelu"),
    ("hidden_dropout_prob", 0.0), ("attention_probs_dropout_prob", 0.0),
    ("max_position_embeddings", 512), ("type_vocab_size", 2), ("initializer_range", 0.02))

# Heads: the transformers class, and (TF variable, HF parameter, transposed) of its weights.
HEADS = {
    "pretraining": ("AlbertForPreTraining", [
        ("cls/predictions/transform/dense/kernel", "predictions.dense.weight", True),
        ("cls/predictions/transform/dense/bias", "predictions.dense.bias", False),
        ("cls/predictions/transform/LayerNorm/gamma", "predictions.LayerNorm.weight", False),
        ("cls/predictions/transform/LayerNorm/beta", "predictions.LayerNorm.bias", False),
        ("cls/predictions/output_bias", "predictions.bias", False),
        ("cls/seq_relationship/output_weights", "sop_classifier.classifier.weight", False),
        ("cls/seq_relationship/output_bias", "sop_classifier.classifier.bias", False)]),
    "masked_lm": ("AlbertForMaskedLM", [
        ("cls/predictions/transform/dense/kernel", "predictions.dense.weight", True),
        ("cls/predictions/transform/dense/bias", "predictions.dense.bias", False),
        ("cls/predictions/transform/LayerNorm/gamma", "predictions.LayerNorm.weight", False),
        ("cls/predictions/transform/LayerNorm/beta", "predictions.LayerNorm.bias", False),
        ("cls/predictions/output_bias", "predictions.bias", False)]),
    "classifier": ("AlbertForSequenceClassification", [
        ("output_weights", "classifier.weight", False),
        ("output_bias", "classifier.bias", False)]),
    "squad_v1": ("AlbertForQuestionAnswering", [
        ("cls/squad/output_weights", "qa_outputs.weight", False),
        ("cls/squad/output_bias", "qa_outputs.bias", False)]),
    "race": ("AlbertForMultipleChoice", [
        ("output_weights", "classifier.weight", False),
        ("output_bias", "classifier.bias", False)]),
    "none": ("AlbertModel", []),
}
HEADS["regression"] = ("AlbertForSequenceClassification", HEADS["classifier"][1])
HEAD_CHOICES = ("auto", "pretraining", "classifier", "regression", "squad_v1", "race", "none")
ARCHITECTURE_HEADS = {"AlbertForPreTraining": "pretraining", "AlbertForMaskedLM": "masked_lm",
                      "AlbertForSequenceClassification": "classifier",
                      "AlbertForQuestionAnswering": "squad_v1",
                      "AlbertForMultipleChoice": "race", "AlbertModel": "none"}
# Variables only run_squad_v2.py's head has.
SQUAD_V2_SCOPES = ("start_logits/", "end_logits/", "answer_class/")
# Buffers, not weights, that older transformers releases saved.
HF_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
# What transformers leaves out of a file because it is tied to another parameter.
HF_TIED = {"predictions.decoder.weight": "embeddings.word_embeddings.weight",
           "predictions.decoder.bias": "predictions.bias"}


class ConversionError(Exception):
  """A bad input: reported as one `error:` line, with nothing written."""


# ---- the mapping ---------------------------------------------------------


def encoder_names(config):
  """(TF variable, HF parameter without `albert.`, transposed) of the encoder."""
  names = [
      ("bert/embeddings/word_embeddings", "embeddings.word_embeddings.weight", False),
      ("bert/embeddings/token_type_embeddings", "embeddings.token_type_embeddings.weight", False),
      ("bert/embeddings/position_embeddings", "embeddings.position_embeddings.weight", False),
      ("bert/embeddings/LayerNorm/gamma", "embeddings.LayerNorm.weight", False),
      ("bert/embeddings/LayerNorm/beta", "embeddings.LayerNorm.bias", False),
  ]
  if has_mapping_in(config):
    names += [
        ("bert/encoder/embedding_hidden_mapping_in/kernel",
         "encoder.embedding_hidden_mapping_in.weight", True),
        ("bert/encoder/embedding_hidden_mapping_in/bias",
         "encoder.embedding_hidden_mapping_in.bias", False)]
  for group in range(config["num_hidden_groups"]):
    for inner in range(config["inner_group_num"]):
      tf_prefix = "bert/encoder/transformer/group_%d/inner_group_%d/" % (group, inner)
      hf_prefix = "encoder.albert_layer_groups.%d.albert_layers.%d." % (group, inner)
      for tf_name, hf_name, transposed in LAYER_NAMES:
        names.append((tf_prefix + tf_name, hf_prefix + hf_name, transposed))
  return names


POOLER_NAMES = [("bert/pooler/dense/kernel", "pooler.weight", True),
                ("bert/pooler/dense/bias", "pooler.bias", False)]
# transformers' span head model has no pooler (the tree's has one, which the head ignores).
NO_POOLER = ("squad_v1",)


# One attention-ffn block: modeling.attention_ffn_block's variables.
LAYER_NAMES = [
    ("attention_1/self/query/kernel", "attention.query.weight", True),
    ("attention_1/self/query/bias", "attention.query.bias", False),
    ("attention_1/self/key/kernel", "attention.key.weight", True),
    ("attention_1/self/key/bias", "attention.key.bias", False),
    ("attention_1/self/value/kernel", "attention.value.weight", True),
    ("attention_1/self/value/bias", "attention.value.bias", False),
    ("attention_1/output/dense/kernel", "attention.dense.weight", True),
    ("attention_1/output/dense/bias", "attention.dense.bias", False),
    ("LayerNorm/gamma", "attention.LayerNorm.weight", False),
    ("LayerNorm/beta", "attention.LayerNorm.bias", False),
    ("ffn_1/intermediate/dense/kernel", "ffn.weight", True),
    ("ffn_1/intermediate/dense/bias", "ffn.bias", False),
    ("ffn_1/intermediate/output/dense/kernel", "ffn_output.weight", True),
    ("ffn_1/intermediate/output/dense/bias", "ffn_output.bias", False),
    ("LayerNorm_1/gamma", "full_layer_layer_norm.weight", False),
    ("LayerNorm_1/beta", "full_layer_layer_norm.bias", False),
]


def has_mapping_in(config):
  """modeling.transformer_model projects the embeddings only when the sizes differ;
  transformers always does."""
  return config["embedding_size"] != config["hidden_size"]


def tf_shapes(config, num_labels):
  """The shape of every TF variable the config implies (heads included)."""
  v, e, h = config["vocab_size"], config["embedding_size"], config["hidden_size"]
  i = config["intermediate_size"]
  shapes = {
      "bert/embeddings/word_embeddings": [v, e],
      "bert/embeddings/token_type_embeddings": [config["type_vocab_size"], e],
      "bert/embeddings/position_embeddings": [config["max_position_embeddings"], e],
      "bert/embeddings/LayerNorm/gamma": [e], "bert/embeddings/LayerNorm/beta": [e],
      "bert/encoder/embedding_hidden_mapping_in/kernel": [e, h],
      "bert/encoder/embedding_hidden_mapping_in/bias": [h],
      "bert/pooler/dense/kernel": [h, h], "bert/pooler/dense/bias": [h],
      "cls/predictions/transform/dense/kernel": [h, e],
      "cls/predictions/transform/dense/bias": [e],
      "cls/predictions/transform/LayerNorm/gamma": [e],
      "cls/predictions/transform/LayerNorm/beta": [e],
      "cls/predictions/output_bias": [v],
      "cls/seq_relationship/output_weights": [2, h], "cls/seq_relationship/output_bias": [2],
      "cls/squad/output_weights": [2, h], "cls/squad/output_bias": [2],
      "output_weights": [num_labels, h], "output_bias": [num_labels],
  }
  for group in range(config["num_hidden_groups"]):
    for inner in range(config["inner_group_num"]):
      prefix = "bert/encoder/transformer/group_%d/inner_group_%d/" % (group, inner)
      for scope in ("attention_1/self/query", "attention_1/self/key",
                    "attention_1/self/value", "attention_1/output/dense"):
        shapes[prefix + scope + "/kernel"] = [h, h]
        shapes[prefix + scope + "/bias"] = [h]
      for scope in ("LayerNorm", "LayerNorm_1"):
        shapes[prefix + scope + "/gamma"] = [h]
        shapes[prefix + scope + "/beta"] = [h]
      shapes[prefix + "ffn_1/intermediate/dense/kernel"] = [h, i]
      shapes[prefix + "ffn_1/intermediate/dense/bias"] = [i]
      shapes[prefix + "ffn_1/intermediate/output/dense/kernel"] = [i, h]
      shapes[prefix + "ffn_1/intermediate/output/dense/bias"] = [h]
  return shapes


def hf_prefix(head):
  """transformers saves AlbertModel's parameters bare, a head model's under `albert.`."""
  return "" if head == "none" else "albert."


def all_names(config, head):
  """(TF variable, full HF parameter, transposed) of the model with HEAD."""
  prefix = hf_prefix(head)
  encoder = encoder_names(config) + ([] if head in NO_POOLER else POOLER_NAMES)
  return [(t, prefix + h, tr) for t, h, tr in encoder] + HEADS[head][1]


# ---- TensorFlow -> transformers ------------------------------------------


def checkpoint_prefix(path):
  """The checkpoint prefix PATH names: a prefix, or its .index or .data-* file."""
  base = os.path.basename(path)
  if base.endswith(".index"):
    return path[:-len(".index")]
  if ".data-" in base:
    return path[:path.rindex(".data-")]
  return path


def read_json(path, what):
  if not os.path.isfile(path):
    raise ConversionError("%s: no such file (%s)" % (path, what))
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
  except (OSError, UnicodeDecodeError, ValueError) as e:
    raise ConversionError("%s: not a readable JSON file (%s): %s" % (path, what, e))
  if not isinstance(value, dict):
    raise ConversionError("%s: not a JSON object (%s)" % (path, what))
  return value


def tf_config(path):
  """albert_config.json, with the keys the conversion needs checked."""
  raw = read_json(path, "the model's albert_config.json")
  config = {}
  for key, default in TF_CONFIG_KEYS:
    value = raw.get(key, default)
    if value is None:
      raise ConversionError("%s: no %s; an albert_config.json has it" % (path, key))
    config[key] = value
  if config["hidden_act"] not in HF_ACTIVATION:
    raise ConversionError("%s: hidden_act %r is not one of the tree's activations (%s)" % (
        path, config["hidden_act"], ", ".join(sorted(HF_ACTIVATION))))
  if raw.get("down_scale_factor", 1) != 1 or raw.get("net_structure_type", 0) != 0:
    raise ConversionError("%s: down_scale_factor and net_structure_type other than 1 and 0 "
                          "are not ALBERT's released structure; transformers has no such model"
                          % path)
  return config


def read_checkpoint(path):
  """A reader of the checkpoint at prefix PATH, and its {variable: shape}."""
  prefix = checkpoint_prefix(path)
  if os.path.isdir(prefix):
    found = sorted(f[:-len(".index")] for f in os.listdir(prefix) if f.endswith(".index"))
    hint = (" such as %s" % os.path.join(prefix, found[-1])) if found else ""
    raise ConversionError("--init_checkpoint=%s is a directory; name a checkpoint in it by "
                          "its prefix%s" % (path, hint))
  if not os.path.isfile(prefix + ".index"):
    raise ConversionError("--init_checkpoint=%s: no checkpoint there (no %s.index); name "
                          "it by its prefix, e.g. OUT/model.ckpt-1000" % (path, prefix))
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  try:
    reader = tf.train.load_checkpoint(prefix)
    names = reader.get_variable_to_shape_map()
  except (tf.errors.OpError, ValueError) as e:
    raise ConversionError("--init_checkpoint=%s: not a readable checkpoint: %s" % (
        path, str(e).splitlines()[0]))
  return reader, names


SQUAD_V2_ERROR = (
    "run_squad_v2.py's head (start logits, end logits given the start, an answer class) "
    "has no transformers equivalent; only run_squad_v1.py's span head converts "
    "(AlbertForQuestionAnswering)")


def check_head_flag(requested):
  if requested == "squad_v2":
    raise ConversionError(SQUAD_V2_ERROR)
  if requested not in HEAD_CHOICES:
    raise ConversionError("--head=%s: not a head; use one of %s" % (
        requested, ", ".join(HEAD_CHOICES)))


def detect_head(names, requested):
  """The head of a checkpoint with variables NAMES, given --head=REQUESTED."""
  if any(n.startswith(SQUAD_V2_SCOPES) for n in names):
    raise ConversionError(SQUAD_V2_ERROR)
  if requested != "auto":
    return requested
  if "cls/squad/output_weights" in names:
    return "squad_v1"
  if "output_weights" in names:
    if names["output_weights"][0] == 1:
      raise ConversionError(
          "the checkpoint's output_weights has one row: run_classifier.py's STS-B head and "
          "run_race.py's head both look so; say which with --head=regression or --head=race")
    return "classifier"
  if "cls/predictions/output_bias" in names:
    return "pretraining" if "cls/seq_relationship/output_weights" in names else "masked_lm"
  return "none"


def to_hf_tensors(reader, names, config, head, ckpt):
  """{HF parameter: array} from the checkpoint, every shape checked against the config."""
  num_labels = names["output_weights"][0] if "output_weights" in names else 1
  shapes = tf_shapes(config, num_labels)
  tensors = {}
  for tf_name, hf_name, transposed in all_names(config, head):
    if tf_name not in names:
      raise ConversionError(
          "--init_checkpoint=%s has no variable %s, which --head=%s with this "
          "--albert_config_file needs (a config of other sizes or groups, or another head?)"
          % (ckpt, tf_name, head))
    if list(names[tf_name]) != shapes[tf_name]:
      raise ConversionError(
          "--init_checkpoint=%s: %s has shape %s, --albert_config_file implies %s; "
          "give the config the checkpoint was trained with" % (
              ckpt, tf_name, list(names[tf_name]), shapes[tf_name]))
    value = reader.get_tensor(tf_name)
    if value.dtype != np.float32:
      raise ConversionError("--init_checkpoint=%s: %s is %s, not float32" % (
          ckpt, tf_name, value.dtype))
    tensors[hf_name] = np.ascontiguousarray(value.T if transposed else value)
  if "predictions.bias" in tensors:
    # save_pretrained leaves this tie out, but from_pretrained (4.46) then reloads the bias as
    # zeros: with it, the bias loads.
    tensors["predictions.decoder.bias"] = tensors["predictions.bias"].copy()
  if not has_mapping_in(config):
    # transformers always projects the embeddings; the identity does what the tree does.
    prefix = hf_prefix(head)
    size = config["hidden_size"]
    tensors[prefix + "encoder.embedding_hidden_mapping_in.weight"] = np.eye(
        size, dtype=np.float32)
    tensors[prefix + "encoder.embedding_hidden_mapping_in.bias"] = np.zeros(
        size, dtype=np.float32)
  return tensors


def hf_config(config, head, num_labels):
  """transformers' config.json for the model."""
  out = {k: config[k] for k, _ in TF_CONFIG_KEYS}
  out["hidden_act"] = HF_ACTIVATION[config["hidden_act"]]
  out.update(model_type="albert", architectures=[HEADS[head][0]],
             layer_norm_eps=LAYER_NORM_EPS, position_embedding_type="absolute",
             classifier_dropout_prob=0.1, pad_token_id=0, bos_token_id=2, eos_token_id=3)
  if head in ("classifier", "regression"):
    out["id2label"] = {str(i): "LABEL_%d" % i for i in range(num_labels)}
    out["label2id"] = {"LABEL_%d" % i: i for i in range(num_labels)}
    if head == "regression":
      # Else transformers takes one label for classification's.
      out["problem_type"] = "regression"
  return out


def tokenizer_files(config):
  """The tokenizer's files beside spiece.model: AlbertTokenizer with the tree's defaults."""
  tokenizer = {"tokenizer_class": "AlbertTokenizer", "do_lower_case": FLAGS.do_lower_case,
               "remove_space": True, "keep_accents": False,
               "model_max_length": config["max_position_embeddings"]}
  special = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>",
             "sep_token": "[SEP]", "pad_token": "<pad>", "cls_token": "[CLS]",
             "mask_token": "[MASK]"}
  return {"tokenizer_config.json": tokenizer, "special_tokens_map.json": special}


def convert_to_hf():
  for flag in ("init_checkpoint", "albert_config_file"):
    if not getattr(FLAGS, flag):
      raise ConversionError("--to_hf needs --%s" % flag)
  if FLAGS.output_dir:
    raise ConversionError("--output_dir goes with --from_hf; --to_hf names the output")
  check_output(FLAGS.to_hf, "--to_hf")
  check_head_flag(FLAGS.head)
  config = tf_config(FLAGS.albert_config_file)
  if FLAGS.spm_model_file:
    check_spm(FLAGS.spm_model_file, "--spm_model_file=%s" % FLAGS.spm_model_file,
              config["vocab_size"], "--albert_config_file's vocab_size")
  reader, names = read_checkpoint(FLAGS.init_checkpoint)
  head = detect_head(names, FLAGS.head)
  num_labels = names["output_weights"][0] if "output_weights" in names else 2
  if head in ("regression", "race") and num_labels != 1:
    raise ConversionError(
        "--head=%s: the checkpoint's output_weights has %d rows, %s's has one; this is "
        "run_classifier.py's head of %d classes (--head=classifier)" % (
            head, num_labels, "STS-B" if head == "regression" else "run_race.py",
            num_labels))
  tensors = to_hf_tensors(reader, names, config, head, FLAGS.init_checkpoint)
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel

  def write(tmp):
    save_file(tensors, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(tmp, "config.json"), hf_config(config, head, num_labels))
    if FLAGS.spm_model_file:
      shutil.copyfile(FLAGS.spm_model_file, os.path.join(tmp, "spiece.model"))
      for name, value in tokenizer_files(config).items():
        write_json(os.path.join(tmp, name), value)

  publish(FLAGS.to_hf, write)
  if head in NO_POOLER:
    print("note: bert/pooler is left out: %s has no pooler, and the span head does not "
          "use it" % HEADS[head][0])
  print("wrote %s: %s (%d tensors); load it with transformers' %s.from_pretrained(%r)" % (
      FLAGS.to_hf, HEADS[head][0], len(tensors), HEADS[head][0], FLAGS.to_hf))


# ---- transformers -> TensorFlow ------------------------------------------


def read_hf_weights(directory):
  """{name: float32 array} of the directory's model.safetensors or pytorch_model.bin."""
  safetensors_path = os.path.join(directory, "model.safetensors")
  bin_path = os.path.join(directory, "pytorch_model.bin")
  if os.path.isfile(safetensors_path):
    from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
    try:
      return load_file(safetensors_path), safetensors_path
    except Exception as e:  # pylint: disable=broad-except
      # safetensors raises its own error types (and TypeError for bfloat16).
      raise ConversionError("%s: not a readable safetensors file of float32 or float16 "
                            "tensors: %s" % (safetensors_path, str(e).splitlines()[0]))
  if os.path.isfile(bin_path):
    try:
      import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
      raise ConversionError(
          "%s is a PyTorch file: reading it needs PyTorch (pip install torch), or give a "
          "directory with model.safetensors instead" % bin_path)
    try:
      state = torch.load(bin_path, map_location="cpu", weights_only=True)
    except Exception as e:  # pylint: disable=broad-except
      raise ConversionError("%s: not a readable PyTorch state dict: %s" % (
          bin_path, str(e).splitlines()[0]))
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in state.items()}, bin_path
  if os.path.isfile(os.path.join(directory, "model.safetensors.index.json")):
    raise ConversionError("%s holds a sharded model (model.safetensors.index.json); ALBERT "
                          "fits one file: save it with save_pretrained(max_shard_size='10GB')"
                          % directory)
  raise ConversionError("%s has no model.safetensors or pytorch_model.bin; a transformers "
                        "model directory (save_pretrained's output) has one" % directory)


def hf_model_config(directory):
  """(albert_config.json's settings, head) from the directory's config.json."""
  path = os.path.join(directory, "config.json")
  raw = read_json(path, "a transformers model's config.json")
  if raw.get("model_type") != "albert":
    raise ConversionError("%s: model_type is %r, not 'albert'" % (path, raw.get("model_type")))
  config = {}
  for key, default in TF_CONFIG_KEYS:
    value = raw.get(key, default)
    if value is None:
      raise ConversionError("%s: no %s; an ALBERT config.json has it" % (path, key))
    config[key] = value
  act = raw.get("hidden_act", "gelu_new")
  if act == "gelu":
    # Erf gelu: the tree has only the tanh form, which ALBERT was trained with.
    print("note: %s: hidden_act is gelu (erf); the tree computes gelu's tanh form, as "
          "ALBERT's own code does, outputs differ by about 1e-3" % path, file=sys.stderr)
    config["hidden_act"] = "gelu"
  elif act in TF_ACTIVATION:
    config["hidden_act"] = TF_ACTIVATION[act]
  else:
    raise ConversionError("%s: hidden_act %r has no counterpart in the tree (%s)" % (
        path, act, ", ".join(sorted(TF_ACTIVATION))))
  eps = raw.get("layer_norm_eps", LAYER_NORM_EPS)
  if eps != LAYER_NORM_EPS:
    raise ConversionError("%s: layer_norm_eps is %g; the tree's layer norm uses %g" % (
        path, eps, LAYER_NORM_EPS))
  if raw.get("position_embedding_type", "absolute") != "absolute":
    raise ConversionError("%s: position_embedding_type %r; the tree has absolute positions "
                          "only" % (path, raw["position_embedding_type"]))
  architectures = raw.get("architectures") or []
  head = None
  if architectures:
    head = ARCHITECTURE_HEADS.get(architectures[0])
    if head is None:
      raise ConversionError("%s: %s has no counterpart among the tree's scripts; these "
                            "convert: %s" % (path, architectures[0],
                                             ", ".join(sorted(ARCHITECTURE_HEADS))))
  return config, head


def head_from_keys(keys):
  """The head of a state dict without `architectures` in its config."""
  if any(k.startswith("qa_outputs.") for k in keys):
    return "squad_v1"
  if any(k.startswith("classifier.") for k in keys):
    return "classifier"
  if any(k.startswith("predictions.") for k in keys):
    return "pretraining" if any(k.startswith("sop_classifier.") for k in keys) else "masked_lm"
  return "none"


def to_tf_variables(weights, config, head, source):
  """{TF variable: array} from the HF state dict, every parameter accounted for."""
  weights = dict(weights)
  # A head model's file has `albert.`; AlbertModel's has none. Accept either.
  bare = {}
  for key, value in weights.items():
    bare[key[len("albert."):] if key.startswith("albert.") else key] = value
  for buffer in HF_BUFFERS:
    bare.pop(buffer, None)
  for tied, origin in HF_TIED.items():
    if tied in bare:
      value = bare.pop(tied)
      if origin in bare and not np.array_equal(bare[origin], value):
        raise ConversionError("%s: %s differs from %s, to which ALBERT ties it" % (
            source, tied, origin))
      bare.setdefault(origin, value)
  if not has_mapping_in(config):
    mapping = ("encoder.embedding_hidden_mapping_in.weight",
               "encoder.embedding_hidden_mapping_in.bias")
    weight, bias = (bare.pop(k, None) for k in mapping)
    size = config["hidden_size"]
    if (weight is None or bias is None or not np.array_equal(weight, np.eye(size))
        or np.any(bias)):
      raise ConversionError(
          "%s: embedding_size equals hidden_size, where the tree's model has no embedding "
          "projection, but the model's embedding_hidden_mapping_in is not the identity"
          % source)
  num_labels = bare["classifier.weight"].shape[0] if "classifier.weight" in bare else 1
  shapes = tf_shapes(config, num_labels)
  variables = {}
  for tf_name, hf_name, transposed in all_names(config, head):
    key = hf_name[len("albert."):] if hf_name.startswith("albert.") else hf_name
    if key not in bare:
      raise ConversionError("%s has no %s, which %s with this config.json has" % (
          source, key, HEADS[head][0]))
    value = bare.pop(key)
    if value.dtype != np.float32:
      value = value.astype(np.float32)
    value = np.ascontiguousarray(value.T if transposed else value)
    if list(value.shape) != shapes[tf_name]:
      raise ConversionError(
          "%s: %s has shape %s, config.json implies %s; the config and the weights are "
          "of different models" % (source, key, list(value.T.shape if transposed else
                                                      value.shape),
                                   shapes[tf_name][::-1] if transposed else shapes[tf_name]))
    variables[tf_name] = value
  if head in NO_POOLER and "pooler.weight" in bare and "pooler.bias" in bare:
    # A pooler that transformers' span head model ignores: the tree's graph has one.
    for tf_name, hf_name, transposed in POOLER_NAMES:
      value = bare.pop(hf_name).astype(np.float32)
      value = np.ascontiguousarray(value.T if transposed else value)
      if list(value.shape) != shapes[tf_name]:
        raise ConversionError("%s: %s has shape %s, config.json implies %s" % (
            source, hf_name, list(value.shape), shapes[tf_name]))
      variables[tf_name] = value
  if bare:
    raise ConversionError("%s: %s has no place in %s (another head or model?)" % (
        source, sorted(bare)[0], HEADS[head][0]))
  return variables


def write_tf_checkpoint(variables, prefix):
  """A TF1 name-based checkpoint (as tf.compat.v1.train.Saver writes) of VARIABLES."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  names = sorted(variables)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(variables[n]) for n in names])


def write_vocab(spm_model_file, path):
  """spiece.vocab: each piece and its score, as sentencepiece's trainer writes it."""
  import sentencepiece as spm  # pylint: disable=import-outside-toplevel
  processor = spm.SentencePieceProcessor()
  with open(spm_model_file, "rb") as f:
    processor.LoadFromSerializedProto(f.read())
  with open(path, "w", encoding="utf-8") as f:
    for i in range(processor.GetPieceSize()):
      f.write("%s\t%g\n" % (processor.IdToPiece(i), processor.GetScore(i)))
  return processor.GetPieceSize()


def convert_from_hf():
  directory = FLAGS.from_hf
  if not FLAGS.output_dir:
    raise ConversionError("--from_hf needs --output_dir, the directory to write")
  for flag in ("init_checkpoint", "albert_config_file", "to_hf", "spm_model_file"):
    if getattr(FLAGS, flag):
      raise ConversionError("--%s goes with --to_hf, not --from_hf" % flag)
  if FLAGS.head != "auto":
    raise ConversionError("--head goes with --to_hf; --from_hf reads the head from "
                          "config.json's architectures")
  check_output(FLAGS.output_dir, "--output_dir")
  if not os.path.isdir(directory):
    raise ConversionError("--from_hf=%s: no such directory" % directory)
  config, head = hf_model_config(directory)
  weights, source = read_hf_weights(directory)
  head = head or head_from_keys(weights)
  variables = to_tf_variables(weights, config, head, source)
  spm_model = os.path.join(directory, "spiece.model")
  has_spm = os.path.isfile(spm_model)
  if has_spm:
    check_spm(spm_model, spm_model, config["vocab_size"], "config.json's vocab_size")

  def write(tmp):
    write_tf_checkpoint(variables, os.path.join(tmp, "model.ckpt"))
    with open(os.path.join(tmp, "checkpoint"), "w", encoding="utf-8") as f:
      f.write('model_checkpoint_path: "model.ckpt"\nall_model_checkpoint_paths: '
              '"model.ckpt"\n')
    write_json(os.path.join(tmp, "albert_config.json"), config)
    if has_spm:
      shutil.copyfile(spm_model, os.path.join(tmp, "spiece.model"))
      write_vocab(spm_model, os.path.join(tmp, "spiece.vocab"))

  publish(FLAGS.output_dir, write)
  out = FLAGS.output_dir
  flags_line = "--init_checkpoint=%s --albert_config_file=%s" % (
      os.path.join(out, "model.ckpt"), os.path.join(out, "albert_config.json"))
  if has_spm:
    flags_line += " --spm_model_file=%s --vocab_file=%s" % (
        os.path.join(out, "spiece.model"), os.path.join(out, "spiece.vocab"))
  print("wrote %s: %s as %d variables; the scripts take %s" % (
      out, HEADS[head][0], len(variables), flags_line))


def check_spm(path, name, vocab_size, what):
  """PATH is a sentencepiece model of VOCAB_SIZE pieces."""
  if not os.path.isfile(path):
    raise ConversionError("%s: no such file" % name)
  import sentencepiece as spm  # pylint: disable=import-outside-toplevel
  processor = spm.SentencePieceProcessor()
  try:
    with open(path, "rb") as f:
      processor.LoadFromSerializedProto(f.read())
  except Exception as e:  # pylint: disable=broad-except
    raise ConversionError("%s: not a sentencepiece model: %s" % (
        name, (str(e).splitlines() or [type(e).__name__])[0]))
  if processor.GetPieceSize() != vocab_size:
    raise ConversionError("%s has %d pieces, %s is %d: the model and its vocabulary differ" % (
        name, processor.GetPieceSize(), what, vocab_size))


# ---- output --------------------------------------------------------------


def write_json(path, value):
  with open(path, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write("\n")


def check_output(path, flag):
  """PATH may be created: absent, or an empty directory."""
  if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)
                                    and not os.listdir(path)):
    raise ConversionError("%s=%s exists and is not an empty directory; remove it or name "
                          "another" % (flag, path))
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise ConversionError("%s=%s: its parent directory %s does not exist" % (
        flag, path, parent))


def publish(path, write):
  """Runs WRITE(tmp) in a directory beside PATH, then moves it to PATH."""
  path = os.path.abspath(path)
  tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", dir=os.path.dirname(path))
  try:
    write(tmp)
    os.chmod(tmp, 0o755)
    if os.path.isdir(path):
      os.rmdir(path)  # empty, as check_output saw it
    os.rename(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def main(argv):
  if len(argv) > 1:
    raise ConversionError("unexpected argument %r; every input is a flag (--helpfull)" %
                          argv[1])
  if bool(FLAGS.from_hf) == bool(FLAGS.to_hf):
    raise ConversionError("give --from_hf=DIR --output_dir=OUT, or --init_checkpoint=CKPT "
                          "--albert_config_file=CFG --to_hf=DIR")
  if FLAGS.from_hf:
    convert_from_hf()
  else:
    convert_to_hf()


def run(argv):
  try:
    main(argv)
  except ConversionError as e:
    sys.exit("error: %s" % e)


if __name__ == "__main__":
  app.run(run)
