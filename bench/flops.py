"""Model FLOPs of one ALBERT training example, counted from the config (for the benchmark).

Training costs three forward passes (forward, plus twice its cost for the backward pass: the
gradients of activations and of weights), i.e. 6 x parameters x tokens for the dense layers,
plus attention, which has no parameters. ALBERT shares one layer's parameters across all
layers, so the count is per-layer compute x layers, not parameters x tokens.
"""

ALBERT_BASE = {
    "vocab_size": 30000, "embedding_size": 128, "hidden_size": 768, "num_hidden_layers": 12,
    "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
    "type_vocab_size": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02, "num_hidden_groups": 1,
    "net_structure_type": 0, "gap_size": 0, "num_memory_blocks": 0, "inner_group_num": 1,
    "down_scale_factor": 1,
}


def per_example(config, seq, preds, task="pretrain"):
  """FLOPs (multiply and add counted as 2) of one training example, with the parts.

  task: pretrain (masked-LM and sentence-order heads), squad (start and end logits for
  every token) or classifier (pooler and a 2-way classifier).
  """
  h = config["hidden_size"]
  e = config["embedding_size"]
  i = config["intermediate_size"]
  v = config["vocab_size"]
  layers = config["num_hidden_layers"]
  # Forward, per token and layer: Q, K, V and output projections (4 h^2 MACs), the two
  # feed-forward matmuls (2 h i MACs), attention scores Q K^T and probabilities x V
  # (2 seq h MACs).
  dense_layer = 2 * (4 * h * h + 2 * h * i)
  attention_layer = 2 * (2 * seq * h)
  encoder = seq * layers * (dense_layer + attention_layer)
  embedding_projection = seq * 2 * e * h  # factorised embedding: e -> h
  # Pretraining: the masked-LM head on the `preds` masked positions only (h -> e dense,
  # e -> vocab logits), and the sentence-order head (pooler h -> h, classifier h -> 2) once
  # per example. SQuAD: h -> 2 logits per token. Classifier: pooler and h -> 2, once.
  pooled_head = 2 * (h * h + 2 * h)
  if task == "pretrain":
    heads = {"mlm_head": preds * 2 * (h * e + e * v), "sop_head": pooled_head}
  elif task == "squad":
    heads = {"span_head": seq * 2 * 2 * h}
  else:
    heads = {"classifier_head": pooled_head}
  forward = encoder + embedding_projection + sum(heads.values())
  parts = {"encoder_dense": 3 * seq * layers * dense_layer,
           "attention": 3 * seq * layers * attention_layer,
           "embedding_projection": 3 * embedding_projection,
           **{name: 3 * flop for name, flop in heads.items()}}
  return 3 * forward, parts


def non_embedding_parameters(config):
  """Parameters of the (shared) encoder layer and the heads, without the embedding tables."""
  h = config["hidden_size"]
  i = config["intermediate_size"]
  e = config["embedding_size"]
  layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h
  return layer + (e * h + h) + (h * h + h)
