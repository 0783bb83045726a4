"""Built-in data sets for every BERT head, generated deterministically from a seed.

Small template grammars with enough variety for a tiny model to learn the task in seconds, and
with accented words and a few CJK characters so the WordPiece pipeline is exercised too.

- `sentiment`: one sentence about a thing, labelled positive/negative by its adjectives.
- `sentiment_pairs`: two such sentences, labelled same/different sentiment.
- `entities`: words tagged B-PER/I-PER (names), B-LOC (cities), NUM (numbers) and O.
- `qa`: a short biography; questions ask for a date, a city, a year or a name, and the answer is
  a span of the context (SQuAD format: `answer_start` is a character offset).
- `qa_long`: the same kind of questions (naming the person) over long contexts - the asked
  person's biography among distractor biographies, 250-490 words (3-6 BERT windows), with
  the answer early, midway or late in the context about equally often.
- `pretraining`: general sentences; `clinical`: sentences from a clinical-notes domain.
"""

from __future__ import annotations

import random
import string

THINGS = [
    "the movie", "this film", "the plot", "the acting", "the soundtrack", "the café",
    "our hotel", "the dinner", "the book", "the ending", "the service", "the museum",
    "the concert", "the crêpes", "the garden", "the hike", "the pastry", "the sequel",
]  # fmt: skip
POSITIVE = [
    "wonderful", "great", "delightful", "superb", "charming", "brilliant", "lovely",
    "excellent", "moving", "fantastic", "pleasant", "magnifique",
]  # fmt: skip
NEGATIVE = [
    "terrible", "awful", "boring", "dreadful", "dull", "disappointing", "bad", "horrible",
    "tedious", "mediocre", "bland", "médiocre",
]  # fmt: skip
ADVERBS = ["really", "truly", "quite", "very", "rather", "so", "incredibly", "honestly"]
SENTIMENT_TEMPLATES = [
    "{thing} was {adverb} {adjective}.",
    "I thought {thing} was {adjective}!",
    "Honestly, {thing} felt {adjective} and {adjective2}.",
    "{thing} is {adverb} {adjective}, déjà vu.",
    "What a {adjective} experience: {thing} was {adjective2}.",
    "We found {thing} {adjective} (very {adjective2}).",
]

FIRST_NAMES = [
    "Anna", "José", "Zoë", "François", "Mei", "Lars", "Amélie", "Omar", "Björn", "Priya",
    "Chloé", "Kenji", "Noël", "Ingrid", "Raúl", "Sofia",
]  # fmt: skip
LAST_NAMES = [
    "García", "Müller", "Dupont", "Chen", "Larsen", "Okafor", "Rossi", "Søndergaard",
    "Novák", "Silva", "Tanaka", "Dubois",
]  # fmt: skip
CITIES = [
    "Paris", "Montréal", "Zürich", "Lisbon", "Kyoto", "Bogotá", "Oslo", "Cairo", "Kraków",
    "Seoul", "Lima", "Québec", "北京", "Nairobi",
]  # fmt: skip
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
ITEMS = ["apples", "tickets", "books", "chairs", "lamps", "stamps", "plates", "maps"]

GENERAL = [
    "the {animal} {verb} over the {place} every {time}.",
    "a {adjective} {animal} lived near the {place}.",
    "people in {city} like to walk along the {place} in the {time}.",
    "the {animal} and the {animal2} {verb} together near the {place}.",
    "every {time} the weather in {city} is {weather}.",
    "she said the {place} was {adjective} and {weather}.",
]
CLINICAL = [
    "the patient was given {drug} for {condition}.",
    "{drug} {dose} mg was started for {condition} on day {day}.",
    "patient reports {symptom} and mild {symptom2} since {weekday}.",
    "history of {condition}; currently on {drug}.",
    "{symptom} improved after {drug} was increased to {dose} mg.",
    "no signs of {condition}, continue {drug} and monitor {symptom}.",
]
WORDS = {
    "animal": ["fox", "dog", "cat", "horse", "bird", "rabbit", "deer", "owl"],
    "verb": ["jumped", "ran", "walked", "flew", "rested", "played"],
    "place": ["river", "hill", "garden", "bridge", "forest", "market", "café", "plaza"],
    "time": ["morning", "evening", "night", "weekend", "summer", "winter"],
    "adjective": ["quiet", "busy", "small", "old", "bright", "calm", "naïve", "curious"],
    "weather": ["sunny", "rainy", "cold", "warm", "windy", "foggy"],
    "drug": ["metformin", "lisinopril", "amoxicillin", "ibuprofen", "warfarin", "insulin"],
    "condition": ["hypertension", "diabetes", "pneumonia", "asthma", "anemia", "arthritis"],
    "symptom": ["fatigue", "nausea", "headache", "dizziness", "cough", "fever"],
    "weekday": ["monday", "tuesday", "wednesday", "thursday", "friday"],
}


def _sentiment_sentence(rng: random.Random, positive: bool) -> str:
    words = POSITIVE if positive else NEGATIVE
    adjective, adjective2 = rng.sample(words, 2)
    text = rng.choice(SENTIMENT_TEMPLATES).format(
        thing=rng.choice(THINGS), adverb=rng.choice(ADVERBS), adjective=adjective,
        adjective2=adjective2,
    )  # fmt: skip
    return text[0].upper() + text[1:]


def sentiment(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        positive = rng.random() < 0.5
        out.append(
            {"text": _sentiment_sentence(rng, positive),
             "label": "positive" if positive else "negative"}
        )  # fmt: skip
    return out


def sentiment_pairs(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        first, second = rng.random() < 0.5, rng.random() < 0.5
        out.append(
            {
                "text": _sentiment_sentence(rng, first),
                "text_pair": _sentiment_sentence(rng, second),
                "label": "same" if first == second else "different",
            }
        )
    return out


def _name(rng: random.Random) -> list[str]:
    return [rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)]


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return str(rng.randint(2, 99))
    if kind < 0.8:
        return f"{rng.randint(1, 9)},{rng.randint(0, 999):03d}"
    return f"{rng.randint(1, 20)}.{rng.randint(1, 9)}"


def entities(count: int, seed: int) -> list[dict]:
    """Sentences as (word, tag) lists; punctuation is a word of its own."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        name = _name(rng)
        person = [(name[0], "B-PER"), (name[1], "I-PER")]
        number = [(_number(rng), "NUM")]
        city = [(rng.choice(CITIES), "B-LOC")]
        item = [(rng.choice(ITEMS), "O")]
        kind = rng.randrange(4)
        if kind == 0:
            words = person + [("bought", "O")] + number + item + [("in", "O")] + city
        elif kind == 1:
            words = [("In", "O")] + city + [(",", "O")] + person + [("sold", "O")] + number + item
        elif kind == 2:
            words = person + [("met", "O")] + [(rng.choice(FIRST_NAMES), "B-PER")]
            words += [("at", "O"), ("gate", "O")] + number
        else:
            words = number + item + [("were", "O"), ("sent", "O"), ("to", "O")] + person
            words += [("from", "O")] + city
        words.append((".", "O"))
        out.append({"tokens": [w for w, _ in words], "tags": [t for _, t in words]})
    return out


def qa(count: int, seed: int) -> list[dict]:
    """SQuAD-style examples: {id, question, context, answers: [{text, answer_start}]}."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        first, second = " ".join(_name(rng)), " ".join(_name(rng))
        while second == first:
            second = " ".join(_name(rng))
        city, city2 = rng.sample(CITIES, 2)
        date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1900, 2020)}"
        year = str(rng.randint(1950, 2023))
        place, adjective = rng.choice(WORDS["place"]), rng.choice(WORDS["adjective"])
        facts = [
            (f"{first} was born on {date} in {city} .", [
                (f"When was {first} born?", date),
                (f"Where was {first} born?", city),
            ]),
            (f"In {year} , {second} moved to {city2} with a friend .", [
                (f"Who moved to {city2}?", second),
                (f"In which year did {second} move to {city2}?", year),
            ]),
            (f"The {place} near the house was {adjective} .", []),
        ]  # fmt: skip
        rng.shuffle(facts)
        offsets, position = [], 0
        for sentence, _ in facts:
            offsets.append(position)
            position += len(sentence) + 1
        context = " ".join(sentence for sentence, _ in facts)
        questions = [
            (q, a, offset + sentence.index(a))
            for (sentence, qs), offset in zip(facts, offsets, strict=True)
            for q, a in qs
        ]
        question, answer, start = rng.choice(questions)
        out.append(
            {
                "id": f"synthetic-{seed}-{index}",
                "question": question,
                "context": context,
                "answers": [{"text": answer, "answer_start": start}],
            }
        )
    return out


JOBS = [
    "teacher", "baker", "nurse", "pilot", "painter", "chemist", "librarian", "architect",
    "chef", "journalist",
]  # fmt: skip
LONG_FACTS = {
    "born": "{person} was born on {date} in {city} .",
    "moved": "In {year} , {person} moved to {city2} with {companion} .",
    "worked": "{person} worked as {article} {job} in {city3} for {years} years .",
    "sold": "On {date2} , {person} sold {count} {item} at the {place} .",
}
LONG_FILLERS = [
    "The {place} near their house was {adjective} .",
    "They liked to walk along the {place} in the {time} .",
    "Every {time} the weather in {city} was {weather} .",
    "Their friends said the {place} was {adjective} and {weather} .",
]
LONG_QUESTIONS = {
    "date": ["When was {person} born?", "On what date was {person} born?"],
    "city": ["Where was {person} born?", "In which city was {person} born?"],
    "year": ["In which year did {person} move to {city2}?", "When did {person} move to {city2}?"],
    "city2": ["Where did {person} move in {year}?", "To which city did {person} move?"],
    "companion": ["Who moved to {city2} with {person}?", "With whom did {person} move?"],
    "job": ["What did {person} work as?", "What was the job of {person} in {city3}?"],
    "city3": ["Where did {person} work as {article} {job}?", "In which city did {person} work?"],
    "years": ["For how many years did {person} work in {city3}?"],
    "count": ["How many {item} did {person} sell?", "How many {item} were sold by {person}?"],
    "date2": ["When did {person} sell {item}?", "On what date did {person} sell the {item}?"],
}  # fmt: skip
# Distractors are added until a context has a random number of words in this range; a paragraph
# has 34-69 words, so contexts have 250-489 words (about 1.04 WordPiece tokens a word: 3-6
# windows of `specs/bert_span_qa.yaml`, about 85 context tokens each) and at most 14 paragraphs
# (28 names).
LONG_CONTEXT_WORDS = (250, 420)
PARAGRAPH_BREAK = "\n\n"


def _format(template: str, values: dict) -> tuple[str, dict]:
    """`template.format(**values)` and the character offset of every field in the result."""
    parts, offsets, position = [], {}, 0
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        position += len(literal)
        if field is not None:
            offsets[field] = position
            parts.append(values[field])
            position += len(values[field])
    return "".join(parts), offsets


def _date(rng: random.Random, year: int) -> str:
    return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {year}"


def _biography(rng: random.Random, person: str, companion: str) -> tuple[str, list]:
    """A paragraph about `person` and its answerable (field, answer, offset, values) facts."""
    city, city2, city3 = rng.sample(CITIES, 3)
    born, job = rng.randint(1900, 1985), rng.choice(JOBS)
    values = {
        "person": person, "companion": companion, "city": city, "city2": city2,
        "city3": city3, "date": _date(rng, born), "date2": _date(rng, born + rng.randint(18, 40)),
        "year": str(born + rng.randint(18, 40)), "job": job,
        "article": "an" if job[0] in "aeiou" else "a",
        "years": str(rng.randint(2, 30)), "count": str(rng.randint(2, 500)),
        "item": rng.choice(ITEMS), "place": rng.choice(WORDS["place"]),
    }  # fmt: skip
    templates = [LONG_FACTS[k] for k in rng.sample(["moved", "worked", "sold"], rng.randint(2, 3))]
    for _ in range(rng.randint(0, 2)):
        filler = rng.choice(LONG_FILLERS)
        fill = {key: rng.choice(options) for key, options in WORDS.items()}
        fill["city"] = rng.choice(CITIES)
        templates.append(filler.format(**fill))
    rng.shuffle(templates)
    sentences, facts, position = [], [], 0
    for template in [LONG_FACTS["born"], *templates]:  # the person is introduced first
        sentence, offsets = _format(template, values)
        for field, offset in offsets.items():
            if field in LONG_QUESTIONS:
                facts.append((field, values[field], position + offset))
        sentences.append(sentence)
        position += len(sentence) + 1
    return " ".join(sentences), [(f, a, o, values) for f, a, o in facts]


def qa_long(count: int, seed: int) -> list[dict]:
    """Long-context `qa`: the answering biography among distractor biographies.

    Each context is 250-490 whitespace words (about 260-510 WordPiece tokens): the biography of
    the asked person plus biographies of other people from the same grammar (so every kind of
    answer - dates, cities, years, names, numbers - appears many times), separated by blank
    lines. The question names the person, so only that paragraph answers it. Distractors are
    added up to a random word count and the answering paragraph is put at a random place among
    them, so answers fall in the first, middle and last part of contexts about equally often.
    """
    rng = random.Random(seed)
    full_names = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    out = []
    for index in range(count):
        names = iter(rng.sample(full_names, 32))  # subjects and companions, all different
        person = next(names)
        answering, facts = _biography(rng, person, next(names))
        words, target = len(answering.split()), rng.randint(*LONG_CONTEXT_WORDS)
        distractors = []
        while words < target:
            paragraph, _ = _biography(rng, next(names), next(names))
            distractors.append(paragraph)
            words += len(paragraph.split())
        where = rng.randint(0, len(distractors))
        before = distractors[:where]
        context = PARAGRAPH_BREAK.join([*before, answering, *distractors[where:]])
        shift = sum(len(p) + len(PARAGRAPH_BREAK) for p in before)
        field, answer, start, values = rng.choice(facts)
        question = rng.choice(LONG_QUESTIONS[field]).format(**values)
        out.append(
            {
                "id": f"synthetic-long-{seed}-{index}",
                "question": question,
                "context": context,
                "answers": [{"text": answer, "answer_start": shift + start}],
            }
        )
    return out


def _fill(rng: random.Random, template: str) -> str:
    values = {key: rng.choice(options) for key, options in WORDS.items()}
    values.update(
        animal2=rng.choice(WORDS["animal"]), symptom2=rng.choice(WORDS["symptom"]),
        city=rng.choice(CITIES), dose=str(rng.choice([5, 10, 20, 25, 50, 100, 250, 500])),
        day=str(rng.randint(1, 14)),
    )  # fmt: skip
    return template.format(**values)


def documents(count: int, seed: int, domain: str = "pretraining") -> list[str]:
    """Plain-text documents of 2-5 sentences each."""
    rng = random.Random(seed)
    templates = CLINICAL if domain == "clinical" else GENERAL
    out = []
    for _ in range(count):
        sentences = [_fill(rng, rng.choice(templates)) for _ in range(rng.randint(2, 5))]
        out.append(" ".join(s[0].upper() + s[1:] for s in sentences))
    return out


GENERATORS = {
    "sentiment": sentiment,
    "sentiment_pairs": sentiment_pairs,
    "entities": entities,
    "qa": qa,
    "qa_long": qa_long,
    "pretraining": lambda count, seed: documents(count, seed, "pretraining"),
    "clinical": lambda count, seed: documents(count, seed, "clinical"),
}


def generate(task: str, train_size: int, validation_size: int, seed: int):
    """(train, validation) examples of a task; the two splits use different seeds."""
    make = GENERATORS[task]
    return make(train_size, seed), make(validation_size, seed + 1_000_003)
