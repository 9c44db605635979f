from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch

from chatbot.nlu import tags
from chatbot.nlu.crf import CRF
from chatbot.nlu.crf_decoder import CRFDecoder, MeanMarginalsDecoder
from chatbot.nlu.tags import allowed_transitions, span_tags, tag_names, tag_spans
from chatbot.nlu.tokenizer import tokenize


def test_bilou_tags_round_trip() -> None:
    text = "fly from New York to Rome tomorrow"
    tokens = tokenize(text)
    tags = span_tags(tokens, [(9, 17, "city"), (21, 25, "city"), (26, 34, "date")])
    assert tags == ["O", "O", "B-city", "L-city", "O", "U-city", "U-date"]
    assert tag_spans(tags) == [(2, 4, "city"), (5, 6, "city"), (6, 7, "date")]


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("bio", ["O", "O", "B-city", "I-city", "O", "B-city", "B-date"]),
        ("io", ["O", "O", "I-city", "I-city", "O", "I-city", "I-date"]),
    ],
)
def test_bio_and_io_tags_round_trip(scheme: str, expected: list[str]) -> None:
    tokens = tokenize("fly from New York to Rome tomorrow")
    tags = span_tags(tokens, [(9, 17, "city"), (21, 25, "city"), (26, 34, "date")], scheme=scheme)
    assert tags == expected
    assert tag_spans(tags) == [(2, 4, "city"), (5, 6, "city"), (6, 7, "date")]
    assert set(tags) <= set(tag_names(["city", "date"], scheme))


def test_io_reads_two_entities_of_one_type_side_by_side_as_one() -> None:
    """Rasa's BILOU_flag: false has the same limit: its tags are bare entity names."""
    tokens = tokenize("Paris Rome")
    spans = [(0, 5, "city"), (6, 10, "city")]
    assert tag_spans(span_tags(tokens, spans, scheme="bio")) == [(0, 1, "city"), (1, 2, "city")]
    assert tag_spans(span_tags(tokens, spans, scheme="io")) == [(0, 2, "city")]


@pytest.mark.parametrize("scheme", sorted(tags.SCHEMES))
def test_every_annotation_is_a_sequence_the_crf_allows(scheme: str) -> None:
    """Whatever spans a training example has, its tags are a path the CRF can score (a
    forbidden transition would cost it FORBIDDEN, and training could never fit it)."""
    names = tag_names(["a", "b"], scheme)
    allowed, first, last = allowed_transitions(names, scheme)
    rng = np.random.default_rng(5)
    tokens = tokenize(" ".join("w" * int(n) for n in rng.integers(1, 4, size=8)))
    for _ in range(300):
        spans, i = [], int(rng.integers(0, 3))
        while i < len(tokens):
            stop = min(len(tokens), i + int(rng.integers(1, 4)))
            spans.append((tokens[i].start, tokens[stop - 1].end, str(rng.choice(["a", "b"]))))
            i = stop + int(rng.integers(0, 3))
        path = [names.index(t) for t in span_tags(tokens, spans, scheme=scheme)]
        assert first[path[0]] and last[path[-1]], (scheme, spans)
        assert all(allowed[x, y] for x, y in itertools.pairwise(path)), (scheme, spans)


def test_a_misaligned_span_takes_the_whole_token() -> None:
    tokens = tokenize("in Berlin-Mitte")
    assert span_tags(tokens, [(3, 9, "city")]) == ["O", "U-city"]


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["I-a", "L-a"], [(0, 2, "a")]),  # an entity without B- still counts
        (["B-a", "O"], [(0, 1, "a")]),
        (["B-a", "I-b", "L-b"], [(0, 1, "a"), (1, 3, "b")]),
        (["B-a", "I-a", "I-a"], [(0, 3, "a")]),
    ],
)
def test_tag_spans_are_tolerant(tags: list[str], spans: list[tuple]) -> None:
    assert tag_spans(tags) == spans


def random_crf(entity_types: list[str], seed: int = 0, scheme: str = "bilou") -> CRF:
    crf = CRF(*allowed_transitions(tag_names(entity_types, scheme), scheme))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return crf


def brute_force(crf: CRF, emissions: np.ndarray) -> tuple[dict[tuple, float], float]:
    decoder = crf.decoder()
    k = emissions.shape[1]
    scores = {
        path: decoder.score(emissions, np.array(path))
        for path in itertools.product(range(k), repeat=len(emissions))
    }
    values = np.array(list(scores.values()))
    return scores, float(values.max() + np.log(np.exp(values - values.max()).sum()))


def test_loss_marginals_and_decoding_match_brute_force() -> None:
    crf = random_crf(["a", "b"])
    emissions = torch.randn(1, 4, 9, generator=torch.Generator().manual_seed(1))
    scores, log_z = brute_force(crf, emissions[0].double().numpy())
    best = max(scores, key=scores.__getitem__)
    nll = crf.nll(emissions, torch.tensor([best]), torch.ones(1, 4, dtype=torch.bool))
    assert nll.item() == pytest.approx(log_z - scores[best], abs=1e-4)
    marginals, decoded_log_z = crf.decoder().marginals(emissions[0].double().numpy())
    assert decoded_log_z == pytest.approx(log_z)
    expected = np.zeros((4, 9))
    for path, score in scores.items():
        expected[np.arange(4), path] += np.exp(score - log_z)
    np.testing.assert_allclose(marginals, expected, atol=1e-9)
    assert crf.decoder().decode(emissions[0].double().numpy())[0] == list(best)


def test_padding_is_masked_out_of_the_loss() -> None:
    crf = random_crf(["a"])
    emissions = torch.randn(1, 3, 5, generator=torch.Generator().manual_seed(2))
    tags = torch.tensor([[1, 3, 0]])
    short = crf.nll(emissions[:, :2], tags[:, :2], torch.ones(1, 2, dtype=torch.bool))
    padded = crf.nll(emissions, tags, torch.tensor([[True, True, False]]))
    assert padded.item() == pytest.approx(short.item(), abs=1e-5)


@pytest.mark.parametrize("scheme", sorted(tags.SCHEMES))
@pytest.mark.parametrize("scale", [0.5, 3.0, 30.0])
def test_decode_equals_viterbi_and_only_decodes_allowed_sequences(
    scale: float, scheme: str
) -> None:
    crf = random_crf([f"e{i}" for i in range(6)], seed=3, scheme=scheme)
    decoder = crf.decoder()
    names = tag_names([f"e{i}" for i in range(6)], scheme)
    allowed, first, last = allowed_transitions(names, scheme)
    if scheme == "bio":  # an entity may end anywhere, and another begin right after it
        assert last.all() and allowed[names.index("B-e0"), names.index("B-e0")]
        assert not allowed[names.index("O"), names.index("I-e0")]
        assert not allowed[names.index("B-e0"), names.index("I-e1")]
    rng = np.random.default_rng(4)
    for _ in range(50):
        emissions = rng.normal(size=(int(rng.integers(1, 12)), len(names))) * scale
        path, marginals = decoder.decode(emissions)
        assert path == decoder.viterbi(emissions)
        assert first[path[0]] and last[path[-1]]
        assert all(allowed[a, b] for a, b in itertools.pairwise(path))
        np.testing.assert_allclose(marginals.sum(axis=1), 1.0)


def test_an_annotation_cutting_through_a_word_takes_it_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Korean writes its particles on: "[서울](city)에서" ("in Seoul"); Rasa warns about it too.
    text = "서울에서 만나요"
    tokens = tokenize(text)
    tags._MISALIGNED_SAID.clear()  # what other tests' trainings said before
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # a training builds its data more than once: said once
            assert span_tags(tokens, [(0, 2, "city")], text=text) == ["U-city", "O"]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1
    assert "city '서울' cuts through the word(s) '서울에서'" in warned[0]


@pytest.mark.parametrize("scheme", ["bilou", "bio"])
def test_mean_marginals_decode_the_allowed_path_of_the_highest_mean_marginals(
    scheme: str,
) -> None:
    """An ensemble's ``ensemble_tags: marginals``: each member's CRF gives its marginals, and
    the path is the allowed one of the highest summed log mean marginal (brute force here)."""
    names = tag_names(["a", "b"], scheme)
    allowed, first, last = allowed_transitions(names, scheme)
    members = [random_crf(["a", "b"], seed=s, scheme=scheme).decoder() for s in (5, 6, 7)]
    decoder = MeanMarginalsDecoder(members)
    rng = np.random.default_rng(8)
    differs = 0
    for _ in range(30):
        length = int(rng.integers(1, 5))
        emissions = rng.normal(size=(3, length, len(names))) * 2.0
        path, marginals = decoder.decode(emissions)
        mean = np.mean([d.marginals(e)[0] for d, e in zip(members, emissions, strict=True)], axis=0)
        np.testing.assert_allclose(marginals, mean)
        candidates = [
            p
            for p in itertools.product(range(len(names)), repeat=length)
            if first[p[0]] and last[p[-1]] and all(allowed[x, y] for x, y in itertools.pairwise(p))
        ]
        best = max(candidates, key=lambda p: np.log(mean[np.arange(length), p]).sum())
        assert path == list(best)
        # Not the same as Viterbi over the members' mean scores, every time.
        scores = CRFDecoder(
            *(
                np.mean([getattr(d, part) for d in members], axis=0)
                for part in ("trans", "start", "end")
            )
        )
        differs += path != scores.viterbi(emissions.mean(axis=0))
    assert differs


def test_mean_marginals_need_each_members_emissions() -> None:
    members = [random_crf(["a"], seed=s).decoder() for s in (1, 2)]
    with pytest.raises(ValueError, match="at least two"):
        MeanMarginalsDecoder(members[:1])
    with pytest.raises(ValueError, match=r"2 members, emissions \(3, 4, 5\)"):
        MeanMarginalsDecoder(members).decode(np.zeros((3, 4, 5)))
