"""SQuAD 2.0's evaluation: exact match and F1 with unanswerable questions.

Written from the published definition of the SQuAD 2.0 metrics (Rajpurkar,
Jia and Liang, 2018, and the task's evaluation description):

- Answers are compared after normalisation: lower case, punctuation removed,
  the articles "a", "an" and "the" removed, whitespace collapsed.
- A question's exact match is 1 if the normalised prediction equals one of
  its normalised gold answers; its F1 is the best, over the gold answers, of
  the harmonic mean of token precision and recall (tokens counted with
  multiplicity).
- A question is answerable when the data set gives it answers.  For
  scoring, gold answers that normalise to nothing are left out, and a
  question left without any has one gold answer, the empty string.  Against
  an empty string (gold or predicted) both scores are 1 if both are empty
  and 0 otherwise.
- With no-answer probabilities (a number per question; run_squad_v2.py
  writes them to null_odds.json), a question whose number is above the
  threshold counts as answered with "no answer".
- The best threshold is the one that maximises the total score when every
  question whose number is at most the threshold keeps its predicted answer
  and every other question is given "no answer"; best_exact and best_f1 are
  those maxima (in percent) and *_thresh the thresholds.

Reported keys, as the task's evaluation reports them: exact, f1, total;
HasAns_exact, HasAns_f1, HasAns_total and NoAns_exact, NoAns_f1,
NoAns_total over the answerable and unanswerable questions (when there are
any); best_exact, best_exact_thresh, best_f1, best_f1_thresh with
no-answer probabilities.  Scores are percentages.

Run as a script:
  python squad_v2_evaluation.py DATA.json PREDICTIONS.json \
      [--na-prob-file null_odds.json] [--na-prob-thresh 1.0] [--out-file F]
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import argparse
import collections
import json
import re
import string
import sys

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


class EvaluationInputError(ValueError):
  """The data set, predictions or probabilities do not fit together."""


def normalize_answer(text):
  """Lower case, no punctuation, no articles, single spaces."""
  text = text.lower()
  text = "".join(ch for ch in text if ch not in _PUNCTUATION)
  text = _ARTICLES.sub(" ", text)
  return " ".join(text.split())


def answer_tokens(text):
  return normalize_answer(text).split() if text else []


def exact_score(gold, prediction):
  return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold, prediction):
  """Token F1; 1 or 0 when either side is empty (agree or not)."""
  gold_tokens = answer_tokens(gold)
  predicted_tokens = answer_tokens(prediction)
  if not gold_tokens or not predicted_tokens:
    return float(gold_tokens == predicted_tokens)
  common = (collections.Counter(gold_tokens) &
            collections.Counter(predicted_tokens))
  overlap = sum(common.values())
  if overlap == 0:
    return 0.0
  precision = overlap / len(predicted_tokens)
  recall = overlap / len(gold_tokens)
  return 2 * precision * recall / (precision + recall)


def gold_answers(dataset):
  """{question id: [gold answer texts]}, [""] for an unanswerable question.

  `dataset` is the "data" list of a SQuAD 2.0 JSON file.  Gold answers that
  normalise to nothing are left out.
  """
  golds = collections.OrderedDict()
  for article in dataset:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        texts = [a["text"] for a in qa.get("answers", [])
                 if normalize_answer(a["text"])]
        golds[qa["id"]] = texts or [""]
  return golds


def answerable(dataset):
  """{question id: whether the data set gives it any answer}."""
  return {qa["id"]: bool(qa.get("answers"))
          for article in dataset for paragraph in article["paragraphs"]
          for qa in paragraph["qas"]}


def raw_scores(golds, predictions):
  """Per question exact and F1, each the best over its gold answers."""
  exact, f1 = {}, {}
  for qid, answers in golds.items():
    prediction = predictions[qid]
    exact[qid] = max(exact_score(a, prediction) for a in answers)
    f1[qid] = max(f1_score(a, prediction) for a in answers)
  return exact, f1


def apply_threshold(scores, na_probs, has_answer, threshold):
  """A question above the threshold scores as a "no answer" prediction."""
  return {qid: (float(not has_answer[qid]) if na_probs[qid] > threshold
                else score)
          for qid, score in scores.items()}


def _percent(scores, qids):
  return 100.0 * sum(scores[qid] for qid in qids) / len(qids)


def best_threshold(scores, predictions, na_probs, has_answer):
  """(best total score in percent, the threshold that gives it).

  Questions are taken in increasing order of their no-answer probability;
  starting from all of them answered "no answer", each one in turn keeps its
  prediction instead.  Ties keep the lowest threshold.
  """
  current = sum(1 for qid in scores if not has_answer[qid])
  best, best_thresh = current, 0.0
  for qid in sorted(scores, key=lambda q: na_probs[q]):
    if has_answer[qid]:
      current += scores[qid]
    elif predictions[qid]:
      current -= 1
    if current > best:
      best, best_thresh = current, na_probs[qid]
  return 100.0 * best / len(scores), best_thresh


def evaluate(dataset, predictions, na_probs=None, na_prob_thresh=1.0):
  """SQuAD 2.0's scores of `predictions` ({id: text}) on `dataset`.

  Raises EvaluationInputError when a question has no prediction or no
  no-answer probability.
  """
  golds = gold_answers(dataset)
  if not golds:
    raise EvaluationInputError("the data set has no questions")
  for name, given in (("predictions", predictions), ("no-answer probabilities",
                                                      na_probs)):
    if given is None:
      continue
    missing = [qid for qid in golds if qid not in given]
    if missing:
      raise EvaluationInputError(
          "the %s have no entry for %d of the %d questions (e.g. %r)" %
          (name, len(missing), len(golds), missing[0]))
  has_answer = answerable(dataset)
  exact, f1 = raw_scores(golds, predictions)
  if na_probs is None:
    na_probs = {qid: 0.0 for qid in golds}
    with_probs = False
  else:
    with_probs = True
  exact_thresh = apply_threshold(exact, na_probs, has_answer, na_prob_thresh)
  f1_thresh = apply_threshold(f1, na_probs, has_answer, na_prob_thresh)
  qids = list(golds)
  result = collections.OrderedDict([
      ("exact", _percent(exact_thresh, qids)),
      ("f1", _percent(f1_thresh, qids)),
      ("total", len(qids)),
  ])
  for prefix, wanted in (("HasAns", True), ("NoAns", False)):
    subset = [qid for qid in qids if has_answer[qid] == wanted]
    if subset:
      result[prefix + "_exact"] = _percent(exact_thresh, subset)
      result[prefix + "_f1"] = _percent(f1_thresh, subset)
      result[prefix + "_total"] = len(subset)
  if with_probs:
    result["best_exact"], result["best_exact_thresh"] = best_threshold(
        exact, predictions, na_probs, has_answer)
    result["best_f1"], result["best_f1_thresh"] = best_threshold(
        f1, predictions, na_probs, has_answer)
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
