"""Small, deterministic data for running ALBERT's scripts end to end.

Everything here is generated (no downloads): a text corpus with learnable
regularities, a sentencepiece model trained on it, a tiny albert_config.json,
GLUE tasks in MRPC's, STS-B's and CoLA's formats (train/dev/test TSV) and a
SQuAD v1.1-format JSON.
"""
import json
import random
import re
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


# The vocabulary of the learnable tasks below. Every word is in the corpus, so
# the sentencepiece model trained on it keeps each one a single piece.
NAMES = ["anna", "paul", "maria", "tom", "lucy", "omar", "nina", "ivan",
         "sara", "leo", "emma", "hugo"]
ROLES = ["driver", "pilot", "owner", "teacher", "doctor", "singer", "cook",
         "guard"]
ACTIONS = ["sees", "likes", "paints", "finds", "visits", "buys", "cleans",
           "carries"]
# Each thing has its own colour, so the masked-LM head can predict one from
# the other.
THINGS = {"house": "red", "boat": "small", "garden": "green", "tree": "big",
          "car": "blue", "window": "open", "road": "long", "coat": "warm",
          "river": "quiet", "tower": "tall"}
# The attributes of the SQuAD task, each with its own values.
ATTRIBUTES = {"name": NAMES, "job": ROLES, "thing": sorted(THINGS),
              "kind": sorted(set(THINGS.values()))}
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth",
            "seventh", "eighth", "ninth", "tenth"]


# Three ways of saying "NAME ACTION the COLOUR THING": the tasks below draw
# each sentence's wording at random, so only its key words carry the label.
PLAIN = "{name} {action} the {colour} {thing}"
TEMPLATES = [PLAIN + " .",
             "it is the {colour} {thing} that {name} {action} .",
             "the {colour} {thing} , {name} {action} it ."]
KEYS = ("name", "action", "thing")
CHOICES = {"name": NAMES, "action": ACTIONS, "thing": sorted(THINGS)}


def _say(rng, keys):
  """KEYS (name, action, thing) as a sentence in a random wording."""
  return rng.choice(TEMPLATES).format(colour=THINGS[keys[2]], **dict(
      zip(KEYS, keys)))


def _story(rng):
  """A document of numbered sentences about one person.

  The ordinal that starts each sentence gives the sentence order away, the
  person repeats through the document and each thing has a fixed colour: the
  regularities that masked-LM and sentence-order prediction can learn. The
  sentences are in the wordings of the fine-tuning tasks (TEMPLATES).
  """
  name = rng.choice(NAMES)
  lines = []
  for ordinal in ORDINALS[:rng.randint(4, 8)]:
    keys = (name, rng.choice(ACTIONS), rng.choice(sorted(THINGS)))
    lines.append("%s , %s" % (ordinal, _say(rng, keys)))
  return lines


def _attributes(rng):
  """A document of numbered sentences giving values to the ATTRIBUTES."""
  return ["%s , the %s is %s ." % (ordinal, attribute,
                                   rng.choice(ATTRIBUTES[attribute]))
          for ordinal, attribute in zip(ORDINALS, rng.sample(
              sorted(ATTRIBUTES), len(ATTRIBUTES)))]


def write_corpus(path, num_docs=120, seed=0):
  """Writes a pretraining corpus: one sentence a line, blank line per doc.

  Documents are numbered stories and attribute lists (_story, _attributes) over
  the words the fine-tuning tasks below use, in random order.
  """
  rng = random.Random(seed)
  lines = []
  for _ in range(num_docs):
    lines.extend(_story(rng) if rng.random() < 0.75 else _attributes(rng))
    lines.append("")
  # The words of the task templates, and capital facts for the SQuAD-style
  # questions about capitals, so that they are in the vocabulary too.
  lines.append("what is the kind ? anna and tom .")
  lines.append("")
  for city, country in zip(CITIES, COUNTRIES):
    lines.append("%s is the capital of %s." % (city, country))
  lines.append("")
  Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
  return Path(path)


def train_sentencepiece(corpus, model_prefix, vocab_size=300):
  """Trains a sentencepiece model as ALBERT's README does; returns paths.

  BPE rather than ALBERT's unigram: on a corpus this small and repetitive the
  unigram trainer stops at about 130 pieces and splits most words into
  letters, while BPE keeps each frequent word one piece.
  """
  import sentencepiece as spm  # pylint: disable=import-outside-toplevel
  spm.SentencePieceTrainer.Train(
      input=str(corpus), model_prefix=str(model_prefix),
      vocab_size=vocab_size, pad_id=0, unk_id=1, eos_id=-1, bos_id=-1,
      control_symbols="[CLS],[SEP],[MASK]",
      user_defined_symbols="(,),\",-,.",
      character_coverage=1.0, model_type="bpe",
      hard_vocab_limit=False, minloglevel=2)
  return Path(str(model_prefix) + ".model"), Path(str(model_prefix) + ".vocab")


def write_wordpiece_vocab(path, texts, size):
  """Writes a WordPiece vocabulary of SIZE lines, as the Chinese models' vocab_chinese.txt:
  BERT's special tokens, then the lower-cased words and punctuation of TEXTS, each a line,
  except the verbs (VERBS), which are a stem and "##s" so that words split into pieces;
  [unusedN] lines fill the rest."""
  words = {w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower())}
  verbs = set(VERBS)
  tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##s"]
  tokens += sorted({w[:-1] if w in verbs else w for w in words} - set(tokens))
  if len(tokens) > size:
    raise ValueError("%d tokens do not fit a vocabulary of %d" % (len(tokens), size))
  tokens += ["[unused%d]" % i for i in range(size - len(tokens))]
  Path(path).write_text("\n".join(tokens) + "\n", encoding="utf-8")
  return Path(path)


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


def _similar_pair(rng, shared):
  """Two sentences of (name, action, thing) with `shared` of the three keys the same."""
  first = tuple(rng.choice(CHOICES[key]) for key in KEYS)
  same = set(rng.sample(range(len(KEYS)), shared))
  second = tuple(first[i] if i in same else
                 rng.choice([c for c in CHOICES[key] if c != first[i]])
                 for i, key in enumerate(KEYS))
  return _say(rng, first), _say(rng, second)


def _paraphrase_pair(rng, label):
  """Two sentences: the same key words (label 1) or another person's (0)."""
  first = tuple(rng.choice(CHOICES[key]) for key in KEYS)
  if label:
    return _say(rng, first), _say(rng, first)
  second = (rng.choice([n for n in NAMES if n != first[0]]),
            rng.choice(ACTIONS), rng.choice(sorted(THINGS)))
  return _say(rng, first), _say(rng, second)


def _balanced(rng, count, values):
  """`count` values cycling through `values`, shuffled."""
  out = [values[i % len(values)] for i in range(count)]
  rng.shuffle(out)
  return out


def write_mrpc(data_dir, num_train=64, num_dev=16, num_test=8, seed=1):
  """Writes DATA_DIR/MRPC/{train,dev,test}.tsv in GLUE's MRPC format.

  A pair is a paraphrase (label 1) when both sentences say the same person,
  action and thing, whatever their wording; in a non-paraphrase (label 0) the
  second sentence is about another person, its action and thing drawn
  afresh. Only comparing the two sentences' persons tells the label. Labels
  are balanced, so chance accuracy is 0.5.
  Returns DATA_DIR, the --data_dir that run_classifier.py takes.
  """
  rng = random.Random(seed)
  task_dir = Path(data_dir) / "MRPC"
  task_dir.mkdir(parents=True, exist_ok=True)
  header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
  for name, count in (("train", num_train), ("dev", num_dev)):
    rows = [header]
    for i, label in enumerate(_balanced(rng, count, [0, 1])):
      a, b = _paraphrase_pair(rng, label)
      rows.append("%d\t%d\t%d\t%s\t%s" % (label, 2 * i, 2 * i + 1, a, b))
    (task_dir / ("%s.tsv" % name)).write_text("\n".join(rows) + "\n",
                                             encoding="utf-8")
  rows = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
  for i, label in enumerate(_balanced(rng, num_test, [0, 1])):
    a, b = _paraphrase_pair(rng, label)
    rows.append("%d\t%d\t%d\t%s\t%s" % (i, 2 * i, 2 * i + 1, a, b))
  (task_dir / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  return Path(data_dir)


def write_squad_v1(path, num_paragraphs=8, seed=2, prefix="q",
                   questions_per_paragraph=3):
  """Writes a SQuAD v1.1-format JSON whose answers are spans of the context.

  A context gives a value to each of the ATTRIBUTES, in random order ("the
  kind is red . the name is anna . ..."); a question asks for one of them
  ("what is the kind ?") and its answer is that value. Every context has
  all the attributes, so only the question tells which value is the answer:
  a model that ignores it is right once in len(ATTRIBUTES).
  """
  rng = random.Random(seed)
  paragraphs = []
  for p in range(num_paragraphs):
    attributes = rng.sample(sorted(ATTRIBUTES), len(ATTRIBUTES))
    values = [rng.choice(ATTRIBUTES[a]) for a in attributes]
    context, starts = "", []
    for attribute, value in zip(attributes, values):
      context += "the %s is " % attribute
      starts.append(len(context))
      context += value + " . "
    context = context.rstrip()
    qas = []
    for q, k in enumerate(rng.sample(range(len(attributes)),
                                     questions_per_paragraph)):
      qas.append({
          "id": "%s%d_%d" % (prefix, p, q),
          "question": "what is the %s ?" % attributes[k],
          "answers": [{"text": values[k], "answer_start": starts[k]}],
      })
    paragraphs.append({"context": context, "qas": qas})
  data = {"version": "1.1",
          "data": [{"title": "Attributes", "paragraphs": paragraphs}]}
  Path(path).write_text(json.dumps(data), encoding="utf-8")
  return Path(path)


def write_stsb(data_dir, num_train=32, num_dev=16, seed=3):
  """Writes DATA_DIR/STS-B/{train,dev,test}.tsv in GLUE's STS-B format.

  Each sentence says who does what to which thing ("anna paints the red
  house ."), in a random wording, and the score is 5 times the share of
  those three the sentences have in common: 0, 5/3, 10/3 or 5, equally
  often. Returns DATA_DIR.
  """
  rng = random.Random(seed)
  task_dir = Path(data_dir) / "STS-B"
  task_dir.mkdir(parents=True, exist_ok=True)
  header = ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
            "sentence1\tsentence2")
  for name, count in (("train", num_train), ("dev", num_dev), ("test", 8)):
    rows = [header + ("\tscore" if name != "test" else "")]
    for i, shared in enumerate(_balanced(rng, count, [0, 1, 2, 3])):
      a, b = _similar_pair(rng, shared)
      score = 5.0 * shared / len(KEYS)
      row = "%d\tmain-captions\tMSRvid\t2012test\t%04d\tnone\tnone\t%s\t%s" % (
          i, i, a, b)
      if name != "test":
        row += "\t%.3f" % score
      rows.append(row)
    (task_dir / ("%s.tsv" % name)).write_text("\n".join(rows) + "\n",
                                             encoding="utf-8")
  return Path(data_dir)


def write_cola(data_dir, num_train=64, num_dev=16, num_test=8, seed=4):
  """Writes DATA_DIR/CoLA/{train,dev,test}.tsv in GLUE's CoLA format.

  A sentence says someone does something to a coloured thing, in a random
  wording; it is acceptable (label 1) when the colour is the thing's own, as
  everywhere in the corpus ("the red house"), and unacceptable (0, starred as
  CoLA stars them) with another colour ("the blue house"). Only the pair of
  colour and thing tells the label. Labels are balanced, so chance accuracy is
  0.5 and chance Matthews correlation 0. Returns DATA_DIR.
  """
  rng = random.Random(seed)
  task_dir = Path(data_dir) / "CoLA"
  task_dir.mkdir(parents=True, exist_ok=True)
  colours = sorted(set(THINGS.values()))

  def say(label):
    keys = tuple(rng.choice(CHOICES[key]) for key in KEYS)
    colour = THINGS[keys[2]] if label else rng.choice(
        [c for c in colours if c != THINGS[keys[2]]])
    return rng.choice(TEMPLATES).format(colour=colour, **dict(zip(KEYS, keys)))

  for name, count in (("train", num_train), ("dev", num_dev)):
    rows = ["gen\t%d\t%s\t%s" % (label, "" if label else "*", say(label))
            for label in _balanced(rng, count, [0, 1])]
    (task_dir / ("%s.tsv" % name)).write_text("\n".join(rows) + "\n",
                                             encoding="utf-8")
  rows = ["index\tsentence"] + ["%d\t%s" % (i, say(label)) for i, label in
                                 enumerate(_balanced(rng, num_test, [0, 1]))]
  (task_dir / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
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

  The article says what each of three people does, each with an action and a
  thing of their own ("anna paints the red house ."). A question is a RACE
  cloze, "_ .", and its options are sentences of the same form: the right
  one is a sentence of the article; each wrong one has a name, an action and
  a thing the article does not mention. Only reading the article tells the
  answer (a model that does not is right once in four), and the right option
  shares four words with it (name, action, colour, thing). With fewer to
  find, the tiny model of tests/albert/test_learning.py learnt the matching abruptly
  or not at all, from the same settings: with one thing to find ("tom likes
  _ ."), 0.31 to 1.0; with an action and a thing ("tom _ ."), 0.64 to 1.0.
  The options are alike in length, the right one's position random. The
  words are the corpus's (write_corpus), each one sentencepiece piece.
  """
  people = rng.sample(NAMES, 3)
  actions = rng.sample(ACTIONS, 3)
  things = rng.sample(sorted(THINGS), 3)
  other_people = [n for n in NAMES if n not in people]
  other_actions = [a for a in ACTIONS if a not in actions]
  other_things = [t for t in sorted(THINGS) if t not in things]

  def deeds(names, verbs, objects):
    return [PLAIN.format(name=name, action=verb, colour=THINGS[thing], thing=thing)
            for name, verb, thing in zip(names, verbs, objects)]

  stated = deeds(people, actions, things)
  article = " ".join(deed + " ." for deed in stated)
  questions, options, answers = [], [], []
  for deed in stated:
    choices = deeds(rng.sample(other_people, 3), rng.sample(other_actions, 3),
                    rng.sample(other_things, 3))
    position = rng.randrange(4)
    choices.insert(position, deed)
    questions.append("_ .")
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
