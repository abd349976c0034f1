"""Needle prompts: a fact among distractors of the same form, asked for, and the answer copies its value.

Each prompt states several facts of one kind (door codes, home towns, pets, meeting hours, car colours),
asks for one of them and ends on the answer's lead-in, so the explained continuation is the asked value
copied from its sentence. The value's characters there are the answer-bearing span: a faithful heatmap
ranks a token of it near the top. Seeded, so a run and its resumption see the same prompts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ["Anna", "Boris", "Chen", "Dalia", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jonas", "Kemal", "Lena"]
COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]
CITIES = ["Paris", "Tokyo", "Cairo", "Lima", "Oslo", "Dublin", "Madrid", "Berlin", "Rome", "Vienna"]
ANIMALS = ["cat", "dog", "parrot", "rabbit", "horse", "goat", "turtle", "hamster"]


@dataclass(frozen=True)
class Needle:
    """A needle prompt: its text, the value the answer must start with, and that value's span in the text."""

    name: str
    text: str
    answer: str
    span: tuple[int, int]


@dataclass(frozen=True)
class Kind:
    """One kind of fact: the sentence stating it, the question, the answer's lead-in, and the values."""

    fact: str
    question: str
    lead: str
    keys: list[str]
    values: list[str] | None  # None: four-digit numbers


KINDS = {
    "door": Kind(
        "The code for the {k} door is {v}.",
        "What is the code for the {k} door?",
        "The code for the {k} door is",
        COLOURS,
        None,
    ),
    "city": Kind("{k} lives in {v}.", "Where does {k} live?", "{k} lives in", NAMES, CITIES),
    "pet": Kind("{k} has a pet {v}.", "What pet does {k} have?", "{k} has a pet", NAMES, ANIMALS),
    "hour": Kind(
        "The meeting with {k} starts at {v} o'clock.",
        "When does the meeting with {k} start?",
        "The meeting with {k} starts at",
        NAMES,
        [str(h) for h in range(1, 13)],
    ),
    "car": Kind("{k} drives a {v} car.", "What colour is the car {k} drives?", "{k} drives a", NAMES, COLOURS),
}


def needle(rng: random.Random, kind_name: str, number: int) -> Needle:
    """A prompt of 3 to 5 facts of `kind_name`, one of them asked for."""
    kind = KINDS[kind_name]
    keys = rng.sample(kind.keys, rng.randint(3, 5))
    values = rng.sample(kind.values, len(keys)) if kind.values else [str(rng.randint(1000, 9999)) for _ in keys]
    asked = rng.randrange(len(keys))
    sentences = [kind.fact.format(k=k, v=v) for k, v in zip(keys, values)]
    body = " ".join(sentences)
    key = keys[asked]
    text = f"{body}\nQuestion: {kind.question.format(k=key)}\nAnswer: {kind.lead.format(k=key)}"
    at = text.index(sentences[asked]) + len(kind.fact.split("{v}")[0].format(k=key))
    return Needle(f"needle-{number:02d}-{kind_name}", text, values[asked], (at, at + len(values[asked])))


def needles(seed: int = 0):
    """An endless seeded stream of needle prompts, the kinds taken in turn."""
    rng, number = random.Random(seed), 0
    while True:
        for kind_name in KINDS:
            number += 1
            yield needle(rng, kind_name, number)
