"""SQuAD 2.0's evaluation of a predictions file, with upstream's scoring functions.

squad_utils.py carries the functions of SQuAD 2.0's official evaluation
(normalisation, exact match and F1 over the gold answers, the no-answer
threshold, the HasAns/NoAns breakdown, the best threshold) and uses them
inside training. This module adds what it lacks to score files on their own:
a check that every question has a prediction (and a no-answer probability),
the whole report in one call, and a command line.

Reported keys, as the official evaluation reports them: exact, f1, total;
HasAns_exact, HasAns_f1, HasAns_total and NoAns_exact, NoAns_f1,
NoAns_total (when there are such questions); best_exact, best_exact_thresh,
best_f1, best_f1_thresh with no-answer probabilities. Scores are percentages.

Run as a script:
  python squad_v2_evaluation.py DATA.json PREDICTIONS.json \
      [--na-prob-file null_odds.json] [--na-prob-thresh 1.0] [--out-file F]
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import argparse
import json
import os
import sys

if __name__ == "__main__":
  # As a script: the scores, or one error line, without TensorFlow's start-up
  # logging (squad_utils imports TensorFlow).
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from albert import squad_utils  # noqa: E402  (after the logging setting above)


class EvaluationInputError(ValueError):
  """The data set, predictions or probabilities do not fit together."""


def evaluate(dataset, predictions, na_probs=None, na_prob_thresh=1.0):
  """SQuAD 2.0's scores of `predictions` ({id: text}) on `dataset`, the "data"
  list of a SQuAD 2.0 file; `na_probs` ({id: number}) are no-answer
  probabilities, such as run_squad_v2.py's null_odds.json.

  Raises EvaluationInputError when a question has no prediction or no
  no-answer probability.
  """
  has_answer = squad_utils.make_qid_to_has_ans(dataset)
  if not has_answer:
    raise EvaluationInputError("the data set has no questions")
  for name, given in (("predictions", predictions),
                      ("no-answer probabilities", na_probs)):
    missing = [qid for qid in has_answer
               if given is not None and qid not in given]
    if missing:
      raise EvaluationInputError(
          "the %s have no entry for %d of the %d questions (e.g. %r)" %
          (name, len(missing), len(has_answer), missing[0]))
  with_probs = na_probs is not None
  if not with_probs:
    na_probs = {qid: 0.0 for qid in has_answer}
  exact_raw, f1_raw = squad_utils.get_raw_scores(dataset, predictions)
  exact = squad_utils.apply_no_ans_threshold(exact_raw, na_probs, has_answer,
                                             na_prob_thresh)
  f1 = squad_utils.apply_no_ans_threshold(f1_raw, na_probs, has_answer,
                                          na_prob_thresh)
  result = squad_utils.make_eval_dict(exact, f1)
  for prefix, wanted in (("HasAns", True), ("NoAns", False)):
    qids = [qid for qid, answerable in has_answer.items()
            if answerable == wanted]
    if qids:
      squad_utils.merge_eval(
          result, squad_utils.make_eval_dict(exact, f1, qid_list=qids), prefix)
  if with_probs:
    squad_utils.find_all_best_thresh(result, predictions, exact_raw, f1_raw,
                                     na_probs, has_answer)
  return result


def _load_json(path, what):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise EvaluationInputError("cannot read the %s %s: %s" % (what, path, e))


def main(argv=None):
  parser = argparse.ArgumentParser(
      description="SQuAD 2.0 exact match and F1 of a predictions file.")
  parser.add_argument("data_file", help="SQuAD 2.0 JSON, e.g. dev-v2.0.json")
  parser.add_argument("pred_file", help="predictions JSON, {id: answer}")
  parser.add_argument("--na-prob-file",
                      help="no-answer probabilities JSON, {id: number}, "
                      "e.g. run_squad_v2.py's null_odds.json")
  parser.add_argument("--na-prob-thresh", type=float, default=1.0,
                      help="above it a question counts as unanswered "
                      "(default 1.0)")
  parser.add_argument("--out-file", help="also write the scores here (JSON)")
  args = parser.parse_args(argv)
  try:
    dataset = _load_json(args.data_file, "data set")
    if not isinstance(dataset, dict) or "data" not in dataset:
      raise EvaluationInputError(
          "the data set %s has no \"data\" list; give a SQuAD JSON file" %
          args.data_file)
    predictions = _load_json(args.pred_file, "predictions")
    na_probs = (_load_json(args.na_prob_file, "no-answer probabilities")
                if args.na_prob_file else None)
    result = evaluate(dataset["data"], predictions, na_probs,
                      args.na_prob_thresh)
  except EvaluationInputError as e:
    sys.exit("error: %s" % e)
  text = json.dumps(result, indent=2)
  if args.out_file:
    with open(args.out_file, "w", encoding="utf-8") as f:
      f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
