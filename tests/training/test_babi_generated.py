"""bAbI task 1 end to end on dialogs this test writes in the bAbI format, so the conversion is
tested wherever the public data is not at hand (tests/training/test_babi.py uses the real files).

The dialogs follow task 1's pattern: the bot greets, the user asks for a table giving some of
cuisine, location, party size and price, the bot asks for each missing one in a fixed order, then
issues ``api_call <cuisine> <location> <party> <price>``. Test dialogs use values in combinations
training never saw, so a bot that copies memorized calls fails.
"""

from __future__ import annotations

import random
from pathlib import Path

from training.babi_project import make_babi
from training.babi_reader import read_dialogs, task_file
from training.benchmarks.babi import evaluate, train

CUISINES = ("italian", "british", "french", "indian", "spanish")
LOCATIONS = ("paris", "london", "bombay", "rome", "madrid")
PARTIES = ("two", "four", "six", "eight")
PRICES = ("cheap", "moderate", "expensive")
QUESTIONS = {
    "cuisine": ("any preference on a type of cuisine", "i love {} food"),
    "location": ("where should it be", "in {}"),
    "party_size": ("how many people would be in your party", "we will be {}"),
    "price": ("which price range are looking for", "in a {} price range please"),
}
GIVEN = {
    "cuisine": "with {} cuisine",
    "location": "in {}",
    "party_size": "for {}",
    "price": "in a {} price range",
}


def _dialog(rng: random.Random, values: dict[str, str]) -> str:
    given = [slot for slot in QUESTIONS if rng.random() < 0.4]
    request = "can you book a table" + "".join(
        " " + GIVEN[slot].format(values[slot]) for slot in given
    )
    turns = [("hi", "hello what can i help you with today"), (request, "i'm on it")]
    user = "<SILENCE>"
    for slot, (question, answer) in QUESTIONS.items():
        if slot in given:
            continue
        turns.append((user, question))
        user = answer.format(values[slot])
    turns.append((user, "ok let me look into some options for you"))
    call = " ".join(values[s] for s in ("cuisine", "location", "party_size", "price"))
    turns.append(("<SILENCE>", f"api_call {call}"))
    return "".join(f"{i} {u}\t{b}\n" for i, (u, b) in enumerate(turns, start=1)) + "\n"


def write_task1(folder: Path, train_dialogs: int = 40, test_dialogs: int = 10) -> None:
    rng = random.Random(7)
    kb = []
    for cuisine in CUISINES:
        for location in LOCATIONS:
            for price in PRICES:
                name = f"resto_{location}_{price}_{cuisine}_1stars"
                for key, value in (
                    ("R_cuisine", cuisine),
                    ("R_location", location),
                    ("R_price", price),
                    ("R_rating", "1"),
                    ("R_phone", f"{name}_phone"),
                    ("R_address", f"{name}_address"),
                    ("R_number", rng.choice(PARTIES)),
                ):
                    kb.append(f"1 {name} {key}\t{value}\n")
    (folder / "dialog-babi-kb-all.txt").write_text("".join(kb), encoding="utf-8")
    combos = [
        {"cuisine": c, "location": loc, "party_size": n, "price": p}
        for c in CUISINES
        for loc in LOCATIONS
        for n in PARTIES
        for p in PRICES
    ]
    rng.shuffle(combos)
    splits = {"trn": combos[:train_dialogs], "tst": combos[train_dialogs:][:test_dialogs]}
    for split, chosen in splits.items():
        text = "".join(_dialog(rng, values) for values in chosen)
        task_file(folder, 1, split).write_text(text, encoding="utf-8")


def test_task1_on_generated_dialogs_fills_the_api_call_from_the_users_words(
    tmp_path: Path,
) -> None:
    write_task1(tmp_path)
    babi = make_babi(tmp_path)
    trn = read_dialogs(task_file(tmp_path, 1, "trn"))
    tst = read_dialogs(task_file(tmp_path, 1, "tst"))
    assert len(trn) == 40 and len(tst) == 10
    model = train(babi, trn, {"epochs": 60})
    assert "api_call {cuisine} {location} {party_size} {price}" in babi.templates
    scores = evaluate(babi, model, tst)
    assert scores["dialogs"] == 10 and scores["responses"] >= 40
    # Every test call has values in a combination no training dialog had: only slots filled
    # from the user's words (lookup tables) and a template filled from them get these right.
    assert scores["per_response"] >= 0.95, scores
