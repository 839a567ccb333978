"""optimization.create_optimizer advances the global step by one per step.

Runs the tree's create_optimizer in a fresh graph and counts: with adamw and
lamb (whose apply_gradients ignore the step), and with an optimizer whose
apply_gradients increments the step itself (tf.compat.v1.train's own
optimizers, and wrappers that delegate to them), where assigning the step
in create_optimizer as well would count every step twice.
"""
import importlib
import sys

import numpy as np
import pytest
import tensorflow as tf

STEPS = 7


@pytest.fixture()
def optimization(albert_tree, monkeypatch):
  monkeypatch.syspath_prepend(str(albert_tree))
  for name in [m for m in sys.modules if m == "albert" or
               m.startswith("albert.")]:
    monkeypatch.delitem(sys.modules, name)
  module = importlib.import_module("albert.optimization")
  assert module.__file__.startswith(str(albert_tree))
  return module


def train(optimization, optimizer_name, steps=STEPS, **kwargs):
  """Runs `steps` train ops; returns (global step, initial w, final w)."""
  with tf.Graph().as_default():
    w = tf.compat.v1.get_variable(
        "w", shape=[3],
        initializer=tf.compat.v1.constant_initializer([0.1, -0.2, -0.1]))
    x = tf.constant([0.4, 0.2, -0.5])
    loss = tf.reduce_mean(tf.square(x - w))
    train_op = optimization.create_optimizer(
        loss, init_lr=0.1, num_train_steps=100, num_warmup_steps=2,
        use_tpu=False, optimizer=optimizer_name, **kwargs)
    global_step = tf.compat.v1.train.get_global_step()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      w0 = sess.run(w)
      for _ in range(steps):
        sess.run(train_op)
      return sess.run(global_step), w0, sess.run(w)


@pytest.mark.parametrize("optimizer_name", ["adamw", "lamb"])
def test_one_increment_per_step(optimization, optimizer_name):
  step, w0, w1 = train(optimization, optimizer_name)
  assert step == STEPS
  assert not np.allclose(w0, w1)  # the variables were trained, too
  assert np.abs(w1 - [0.4, 0.2, -0.5]).sum() < np.abs(w0 - [0.4, 0.2, -0.5]).sum()


def test_optimizer_that_counts_itself_counts_once(optimization, monkeypatch):
  # AdamW made to behave like tf.compat.v1.train.Optimizer: when given the
  # global step, its apply_gradients increments it.
  adamw = optimization.AdamWeightDecayOptimizer
  original = adamw.apply_gradients

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    op = original(self, grads_and_vars, global_step, name)
    if global_step is None:
      return op
    with tf.control_dependencies([op]):
      return tf.compat.v1.assign_add(global_step, 1)

  monkeypatch.setattr(adamw, "apply_gradients", apply_gradients)
  step, w0, w1 = train(optimization, "adamw")
  assert step == STEPS
  assert not np.allclose(w0, w1)


def test_tf_v1_optimizer_counts_once(optimization, monkeypatch):
  # tf.compat.v1.train.GradientDescentOptimizer.apply_gradients increments
  # the global step when it is given one.
  monkeypatch.setattr(
      optimization, "AdamWeightDecayOptimizer",
      lambda learning_rate, **unused: (
          tf.compat.v1.train.GradientDescentOptimizer(learning_rate)))
  step, w0, w1 = train(optimization, "adamw")
  assert step == STEPS
  assert not np.allclose(w0, w1)

