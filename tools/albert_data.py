"""Small, deterministic data for running ALBERT's scripts end to end.

Everything here is generated (no downloads): a text corpus with learnable
regularities, a sentencepiece model trained on it, a tiny albert_config.json,
an MRPC-format GLUE task (train/dev/test TSV) and a SQuAD v1.1-format JSON.
"""
import json
import random
from pathlib import Path

SUBJECTS = ["the cat", "a dog", "my friend", "the teacher", "our neighbour",
            "the old man", "a young girl", "the farmer", "the pilot",
            "his sister"]
VERBS = ["sees", "likes", "paints", "finds", "visits", "buys", "cleans",
         "carries", "watches", "builds"]
OBJECTS = ["the red house", "a small boat", "the green garden", "a big tree",
           "the blue car", "an open window", "the long road", "a warm coat",
           "the quiet river", "a tall tower"]
PLACES = ["in the morning", "near the station", "after dinner",
          "on the hill", "before the rain", "at the market"]
CITIES = ["Paris", "Berlin", "Madrid", "Lisbon", "Vienna", "Prague", "Oslo",
          "Dublin", "Athens", "Warsaw"]
COUNTRIES = ["France", "Germany", "Spain", "Portugal", "Austria",
             "the Czech Republic", "Norway", "Ireland", "Greece", "Poland"]


def sentence(rng):
  """One sentence of the fixed grammar: subject verb object [place]."""
  words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
  if rng.random() < 0.5:
    words.append(rng.choice(PLACES))
  text = " ".join(words) + "."
  return text[0].upper() + text[1:]


def write_corpus(path, num_docs=120, seed=0):
  """Writes a pretraining corpus: one sentence a line, blank line per doc."""
  rng = random.Random(seed)
  lines = []
  for _ in range(num_docs):
    for _ in range(rng.randint(4, 8)):
      lines.append(sentence(rng))
    lines.append("")
  # Capital facts, so that SQuAD-style questions have answers in-vocabulary.
  for city, country in zip(CITIES, COUNTRIES):
    lines.append("%s is the capital of %s." % (city, country))
  lines.append("")
  Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
  return Path(path)


def train_sentencepiece(corpus, model_prefix, vocab_size=300):
  """Trains a sentencepiece model as ALBERT's README does; returns paths."""
  import sentencepiece as spm  # pylint: disable=import-outside-toplevel
  spm.SentencePieceTrainer.Train(
      input=str(corpus), model_prefix=str(model_prefix),
      vocab_size=vocab_size, pad_id=0, unk_id=1, eos_id=-1, bos_id=-1,
      control_symbols="[CLS],[SEP],[MASK]",
      user_defined_symbols="(,),\",-,.",
      character_coverage=1.0, model_type="unigram",
      hard_vocab_limit=False, minloglevel=2)
  return Path(str(model_prefix) + ".model"), Path(str(model_prefix) + ".vocab")


def write_albert_config(path, vocab_size, hidden_size=32, num_layers=2,
                        num_heads=2, intermediate_size=64, embedding_size=16,
                        max_position_embeddings=64):
  """Writes a tiny albert_config.json."""
  config = {
      "attention_probs_dropout_prob": 0.0,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.0,
      "embedding_size": embedding_size,
      "hidden_size": hidden_size,
      "initializer_range": 0.02,
      "intermediate_size": intermediate_size,
      "max_position_embeddings": max_position_embeddings,
      "num_attention_heads": num_heads,
      "num_hidden_layers": num_layers,
      "num_hidden_groups": 1,
      "net_structure_type": 0,
      "gap_size": 0,
      "num_memory_blocks": 0,
      "inner_group_num": 1,
      "down_scale_factor": 1,
      "type_vocab_size": 2,
      "vocab_size": vocab_size,
  }
  Path(path).write_text(json.dumps(config, indent=2), encoding="utf-8")
  return Path(path)


def _paraphrase_pair(rng, index):
  """An MRPC-like pair: label 1 if both sentences say the same thing."""
  subj, verb, obj = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)
  first = "%s %s %s." % (subj, verb, obj)
  if index % 2 == 0:
    second = "%s %s %s %s." % (subj, verb, obj, rng.choice(PLACES))
    label = 1
  else:
    other = rng.choice([o for o in OBJECTS if o != obj])
    second = "%s %s %s." % (rng.choice(SUBJECTS), rng.choice(VERBS), other)
    label = 0
  return label, first.capitalize(), second.capitalize()


def write_mrpc(data_dir, num_train=64, num_dev=16, num_test=8, seed=1):
  """Writes DATA_DIR/MRPC/{train,dev,test}.tsv in GLUE's MRPC format.

  Returns DATA_DIR, the --data_dir that run_classifier.py takes.
  """
  rng = random.Random(seed)
  task_dir = Path(data_dir) / "MRPC"
  task_dir.mkdir(parents=True, exist_ok=True)
  header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
  for name, count in (("train", num_train), ("dev", num_dev)):
    rows = [header]
    for i in range(count):
      label, a, b = _paraphrase_pair(rng, i)
      rows.append("%d\t%d\t%d\t%s\t%s" % (label, 2 * i, 2 * i + 1, a, b))
    (task_dir / ("%s.tsv" % name)).write_text("\n".join(rows) + "\n",
                                             encoding="utf-8")
  rows = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
  for i in range(num_test):
    _, a, b = _paraphrase_pair(rng, i)
    rows.append("%d\t%d\t%d\t%s\t%s" % (i, 2 * i, 2 * i + 1, a, b))
  (task_dir / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  return Path(data_dir)


def write_squad_v1(path, num_paragraphs=8, seed=2, prefix="q"):
  """Writes a SQuAD v1.1-format JSON whose answers are spans of the context."""
  rng = random.Random(seed)
  paragraphs = []
  for p in range(num_paragraphs):
    pairs = rng.sample(list(zip(CITIES, COUNTRIES)), 3)
    context = " ".join("%s is the capital of %s." % pair for pair in pairs)
    qas = []
    for q, (city, country) in enumerate(pairs):
      qas.append({
          "id": "%s%d_%d" % (prefix, p, q),
          "question": "What is the capital of %s?" % country,
          "answers": [{"text": city, "answer_start": context.index(city)}],
      })
    paragraphs.append({"context": context, "qas": qas})
  data = {"version": "1.1",
          "data": [{"title": "Capitals", "paragraphs": paragraphs}]}
  Path(path).write_text(json.dumps(data), encoding="utf-8")
  return Path(path)


def write_stsb(data_dir, num_train=32, num_dev=16, seed=3):
  """Writes DATA_DIR/STS-B/{train,dev,test}.tsv in GLUE's STS-B format.

  The score (0 to 5) is 5 times the share of words the two sentences have in
  common, so it is a real regression target. Returns DATA_DIR.
  """
  rng = random.Random(seed)
  task_dir = Path(data_dir) / "STS-B"
  task_dir.mkdir(parents=True, exist_ok=True)
  header = ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
            "sentence1\tsentence2")
  for name, count in (("train", num_train), ("dev", num_dev), ("test", 8)):
    rows = [header + ("\tscore" if name != "test" else "")]
    for i in range(count):
      a, b = sentence(rng), sentence(rng)
      if i % 2 == 0:
        b = a
      words_a, words_b = set(a.lower().split()), set(b.lower().split())
      score = 5.0 * len(words_a & words_b) / len(words_a | words_b)
      row = "%d\tmain-captions\tMSRvid\t2012test\t%04d\tnone\tnone\t%s\t%s" % (
          i, i, a, b)
      if name != "test":
        row += "\t%.3f" % score
      rows.append(row)
    (task_dir / ("%s.tsv" % name)).write_text("\n".join(rows) + "\n",
                                             encoding="utf-8")
  return Path(data_dir)


# SQuAD 2.0 and RACE, for run_squad_v2.py and run_race.py.


def write_squad_v2(path, num_paragraphs=8, seed=6, prefix="u"):
  """Writes a SQuAD 2.0-format JSON with answerable and unanswerable questions.

  Each paragraph names the capitals of three countries.  It asks for two of
  them (the answer is the city, a span of the context) and for the capital of
  a country the paragraph does not mention: that question has no answer
  (`is_impossible`, empty `answers`, and, as in SQuAD 2.0, a
  `plausible_answers` span that is the wrong city).  Whether a question can
  be answered depends only on whether its country is in the context.
  """
  rng = random.Random(seed)
  capitals = list(zip(CITIES, COUNTRIES))
  paragraphs = []
  for p in range(num_paragraphs):
    chosen = rng.sample(capitals, 4)
    pairs, (_, missing_country) = chosen[:3], chosen[3]
    context = " ".join("%s is the capital of %s." % pair for pair in pairs)
    qas = []
    for q, (city, country) in enumerate(pairs[:2]):
      qas.append({
          "id": "%s%d_%d" % (prefix, p, q),
          "question": "What is the capital of %s?" % country,
          "answers": [{"text": city, "answer_start": context.index(city)}],
          "is_impossible": False,
      })
    decoy = pairs[2][0]
    qas.append({
        "id": "%s%d_2" % (prefix, p),
        "question": "What is the capital of %s?" % missing_country,
        "answers": [],
        "plausible_answers": [{"text": decoy,
                               "answer_start": context.index(decoy)}],
        "is_impossible": True,
    })
    paragraphs.append({"context": context, "qas": qas})
  data = {"version": "v2.0",
          "data": [{"title": "Capitals", "paragraphs": paragraphs}]}
  Path(path).parent.mkdir(parents=True, exist_ok=True)
  Path(path).write_text(json.dumps(data), encoding="utf-8")
  return Path(path)


def _race_article(rng, number):
  """One RACE-style article with questions whose answer the article states.

  The article says which object each of three people likes; a question asks
  what one of them likes, and the right option is that object, the three
  others being objects the article does not give that person.
  """
  people = rng.sample(SUBJECTS, 3)
  objects = rng.sample(OBJECTS, 3)
  article = " ".join("%s likes %s." % (person, obj)
                     for person, obj in zip(people, objects))
  article = ". ".join(s.strip().capitalize() for s in article.split(".")
                      if s.strip()) + "."
  questions, options, answers = [], [], []
  for person, obj in zip(people, objects):
    wrong = rng.sample([o for o in OBJECTS if o != obj], 3)
    choices = wrong[:]
    position = rng.randrange(4)
    choices.insert(position, obj)
    questions.append("What does %s like?" % person)
    options.append(choices)
    answers.append("ABCD"[position])
  return {"id": "%d.txt" % number, "article": article,
          "questions": questions, "options": options, "answers": answers}


def write_race(data_dir, num_train=24, num_dev=8, num_test=8, seed=7):
  """Writes RACE's layout under DATA_DIR/RACE: {train,dev,test}/{middle,high}.

  As in the released data set, each article is one JSON file N.txt (article,
  questions, options, answers).  run_race.py reads one file per directory,
  all.txt, with one such JSON a line; that file is written too, the articles'
  lines joined in file order.  Each split has its articles split between
  middle and high.  Returns DATA_DIR, the --data_dir that run_race.py takes.
  """
  rng = random.Random(seed)
  number = 0
  for split, count in (("train", num_train), ("dev", num_dev),
                       ("test", num_test)):
    for level, level_count in (("middle", count - count // 2),
                               ("high", count // 2)):
      level_dir = Path(data_dir) / "RACE" / split / level
      level_dir.mkdir(parents=True, exist_ok=True)
      lines = []
      for _ in range(level_count):
        number += 1
        line = json.dumps(_race_article(rng, number))
        (level_dir / ("%d.txt" % number)).write_text(line, encoding="utf-8")
        lines.append(line)
      (level_dir / "all.txt").write_text("\n".join(lines) + "\n",
                                         encoding="utf-8")
  return Path(data_dir)
