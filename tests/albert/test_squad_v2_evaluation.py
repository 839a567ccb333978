"""squad_v2_evaluation.py (overlay): SQuAD 2.0's exact match and F1.

Hand-worked cases of the published definition, through the module's
evaluate() and through the scoring functions of upstream's squad_utils.py it
calls; and the script's command line, including its one-line errors.
"""
import json
import subprocess
import sys

import pytest

from .tree import load_tree_module


@pytest.fixture(scope="module")
def ev(albert_tree):
  """The module, imported with the tree on sys.path: it imports albert.squad_utils."""
  sys.path.insert(0, str(albert_tree))
  try:
    yield load_tree_module(albert_tree, "squad_v2_evaluation.py", "squad_v2_evaluation")
  finally:
    sys.path.remove(str(albert_tree))
    for name in [m for m in sys.modules if m == "albert" or m.startswith("albert.")]:
      del sys.modules[name]


def dataset(*questions):
  """A one-paragraph SQuAD 2.0 "data" list of (id, [gold answers])."""
  qas = [{"id": qid, "question": "?", "is_impossible": not answers,
          "answers": [{"text": a, "answer_start": 0} for a in answers]}
         for qid, answers in questions]
  return [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]


def test_normalisation(ev):
  normalize_answer = ev.squad_utils.normalize_answer_v2
  assert normalize_answer("The  Eiffel-Tower, in PARIS!") == (
      "eiffeltower in paris")
  assert normalize_answer("an apple a day") == "apple day"
  assert normalize_answer("theatre") == "theatre"  # articles are words


def test_exact_and_f1_of_one_answer(ev):
  exact_score, f1_score = ev.squad_utils.compute_exact, ev.squad_utils.compute_f1
  assert exact_score("the cat", "Cat.") == 1
  assert f1_score("the cat", "Cat.") == 1.0
  # gold: big red dog; predicted: red dog barks -> p = 2/3, r = 2/3.
  assert f1_score("a big red dog", "red dog barks") == pytest.approx(2 / 3)
  # Tokens count with multiplicity: one x and one y in common.
  assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
  assert f1_score("paris", "berlin") == 0.0
  # No answer against no answer agrees; against an answer it does not.
  assert f1_score("", "") == 1.0
  assert exact_score("", "") == 1
  assert f1_score("", "paris") == 0.0
  assert f1_score("paris", "") == 0.0
  # A gold answer that normalises to nothing is no answer.
  assert f1_score("the", "") == 1.0


def test_evaluate_with_unanswerable_questions(ev):
  data = dataset(("a", ["Paris", "the city of Paris"]), ("b", ["Oslo"]),
                 ("c", []), ("d", []))
  predictions = {"a": "city of paris", "b": "Bergen", "c": "", "d": "Rome"}
  result = ev.evaluate(data, predictions)
  assert result["total"] == 4
  # Exact: a (second gold answer) and c; F1 the same here.
  assert result["exact"] == pytest.approx(50.0)
  assert result["f1"] == pytest.approx(50.0)
  assert (result["HasAns_total"], result["NoAns_total"]) == (2, 2)
  assert result["HasAns_exact"] == pytest.approx(50.0)
  assert result["NoAns_exact"] == pytest.approx(50.0)
  assert "best_f1" not in result


def test_no_answer_probabilities_and_best_threshold(ev):
  data = dataset(("a", ["Paris"]), ("b", ["Oslo"]), ("c", []), ("d", []))
  predictions = {"a": "Paris", "b": "Bergen", "c": "Rome", "d": "Rome"}
  na_probs = {"a": 0.1, "b": 0.5, "c": 0.3, "d": 0.9}
  # Threshold 0.4: b and d count as "no answer" -> a right, b wrong,
  # c wrong (answered), d right.
  result = ev.evaluate(data, predictions, na_probs, na_prob_thresh=0.4)
  assert result["exact"] == pytest.approx(50.0)
  assert result["NoAns_exact"] == pytest.approx(50.0)
  # Walking the thresholds up from "all no answer" (2 right): a +1 at 0.1
  # (3), c -1 at 0.3 (2), b +0 at 0.5, d -1 at 0.9.  Best: 3 of 4 at 0.1.
  assert result["best_exact"] == pytest.approx(75.0)
  assert result["best_exact_thresh"] == pytest.approx(0.1)
  assert result["best_f1"] == pytest.approx(75.0)
  # The default threshold 1.0 keeps every prediction.
  assert ev.evaluate(data, predictions, na_probs)["exact"] == pytest.approx(25.0)


def test_missing_prediction_is_an_error(ev):
  data = dataset(("a", ["Paris"]), ("b", []))
  with pytest.raises(ev.EvaluationInputError, match="1 of the 2 questions"):
    ev.evaluate(data, {"a": "Paris"})
  with pytest.raises(ev.EvaluationInputError, match="no-answer"):
    ev.evaluate(data, {"a": "Paris", "b": ""}, {"a": 0.0})


def test_command_line(albert_tree, tmp_path):
  data = {"version": "v2.0", "data": dataset(("a", ["Paris"]), ("b", []))}
  (tmp_path / "dev.json").write_text(json.dumps(data))
  (tmp_path / "pred.json").write_text(json.dumps({"a": "paris", "b": "x"}))
  (tmp_path / "na.json").write_text(json.dumps({"a": 0.2, "b": 0.9}))
  script = str(albert_tree / "squad_v2_evaluation.py")
  proc = subprocess.run(
      [sys.executable, script, str(tmp_path / "dev.json"),
       str(tmp_path / "pred.json"), "--na-prob-file", str(tmp_path / "na.json"),
       "--na-prob-thresh", "0.5", "--out-file", str(tmp_path / "out.json")],
      capture_output=True, text=True, timeout=60)
  assert proc.returncode == 0, proc.stderr
  result = json.loads(proc.stdout)
  assert result == json.loads((tmp_path / "out.json").read_text())
  assert result["exact"] == pytest.approx(100.0)
  assert result["best_f1"] == pytest.approx(100.0)

  (tmp_path / "short.json").write_text(json.dumps({"a": "paris"}))
  proc = subprocess.run(
      [sys.executable, script, str(tmp_path / "dev.json"),
       str(tmp_path / "short.json")], capture_output=True, text=True,
      timeout=60)
  assert proc.returncode == 1
  assert proc.stderr.strip() == (
      "error: the predictions have no entry for 1 of the 2 questions (e.g. 'b')")
