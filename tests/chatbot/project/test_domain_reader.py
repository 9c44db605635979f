from __future__ import annotations

import logging
import textwrap
from dataclasses import replace

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project.domain import Domain, MappingCondition
from chatbot.project.domain_parts import without_origins
from chatbot.project.domain_reader import domain_from_dict, domain_to_dict
from chatbot.project.yaml_io import load_yaml_text

FULL_DOMAIN = """\
version: "3.1"
intents:
  - greet
  - inform:
      use_entities: [city]
  - chitchat:
      ignore_entities: [name]
  - deny:
      use_entities: false
  - affirm:
      use_entities: true
entities:
  - city
  - name:
      roles: [first, last]
      groups: [a]
  - mood:
      influence_conversation: false
slots:
  city:
    type: text
    initial_value: Paris
    mappings:
      - type: from_entity
        entity: city
        role: null
        intent: [inform]
        not_intent: chitchat
        conditions:
          - active_loop: trip_form
            requested_slot: city
          - active_loop: null
  size:
    type: categorical
    values: [Small, large, 3, true]
    mappings:
      - type: from_intent
        intent: affirm
        value: small
  ok:
    type: bool
    influence_conversation: false
    mappings:
      - type: from_trigger_intent
        intent: affirm
        value: true
  rating:
    type: float
    min_value: -1
    max_value: 10.5
    mappings:
      - type: custom
        action: action_rate
  items:
    type: list
    mappings:
      - type: from_text
  extra:
    type: any
    mappings:
      - type: custom
  moduled:
    type: rasa.shared.core.slots.TextSlot
responses:
  utter_greet:
    - text: "Hi {city}!"
      channel: slack
      condition:
        - type: slot
          name: ok
          value: true
    - text: "Hello!"
      buttons:
        - title: yes
          payload: /affirm
      image: https://example.com/a.png
    - custom:
        blocks: [1, 2]
    - attachment: a.pdf
      metadata:
        rephrase: true
  utter_faq/ask_name:
    - text: I am a bot
actions:
  - action_rate
  - action_session_start
  - action_remote:
      send_domain: true
forms:
  trip_form:
    ignored_intents: chitchat
    required_slots:
      - city
  old_form:
    required_slots:
      size:
        - type: from_entity
          entity: size
session_config:
  session_expiration_time: 30
  carry_over_slots_to_new_session: false
config:
  store_entities_as_slots: false
e2e_actions:
  - Hello there
"""


def full_domain() -> Domain:
    return domain_from_dict(load_yaml_text(FULL_DOMAIN, file="domain.yml"), "domain.yml")


def test_reads_every_section() -> None:
    d = full_domain()
    assert list(d.intents) == ["greet", "inform", "chitchat", "deny", "affirm"]
    assert d.intents["greet"].used_entities is None
    assert d.intents["inform"].used_entities == ("city",)
    assert d.intents["chitchat"].used_entities == ("city", "mood")
    assert d.intents["deny"].used_entities == ()
    assert d.intents["affirm"].used_entities is None
    assert d.entities["name"].roles == ("first", "last")
    assert d.entities["name"].groups == ("a",)
    assert d.entities["mood"].influence_conversation is False
    assert d.slots["city"].initial_value == "Paris"
    mapping = d.slots["city"].mappings[0]
    assert mapping.entity == "city"
    assert mapping.intent == ("inform",)
    assert mapping.not_intent == ("chitchat",)
    assert [(c.active_loop, c.requested_slot) for c in mapping.conditions] == [
        ("trip_form", "city"),
        (None, None),
    ]
    assert d.slots["size"].values == ("small", "large", "3", "true")
    assert d.slots["size"].mappings[0].value == "small"
    assert d.slots["ok"].influence_conversation is False
    assert d.slots["ok"].mappings[0].type == "from_trigger_intent"
    assert (d.slots["rating"].min_value, d.slots["rating"].max_value) == (-1.0, 10.5)
    assert d.slots["rating"].mappings[0].action == "action_rate"
    assert d.slots["extra"].influence_conversation is False  # any slots never do
    assert d.slots["moduled"].type == "text"
    greet = d.responses["utter_greet"]
    assert greet[0].channel == "slack"
    assert greet[0].conditions[0].name == "ok"
    assert greet[0].conditions[0].value is True
    assert greet[0].data == {"text": "Hi {city}!"}
    assert greet[1].data["buttons"] == [{"title": "yes", "payload": "/affirm"}]
    assert greet[2].text is None
    assert "utter_faq" in d.action_names
    assert d.actions == ("action_rate", "action_session_start", "action_remote")
    assert d.action_options == {"action_remote": {"send_domain": True}}
    assert d.forms["trip_form"].required_slots == ("city",)
    assert d.forms["trip_form"].ignored_intents == ("chitchat",)
    assert d.forms["old_form"].required_slots == ("size",)
    # Rasa 2's form mappings are the slot's own, while the form is active (`rasa data migrate`).
    old = d.slots["size"].mappings[-1]
    assert (old.type, old.entity) == ("from_entity", "size")
    assert old.conditions == (MappingCondition("old_form"),)
    assert d.session_config.session_expiration_time == 30
    assert d.session_config.carry_over_slots is False
    assert d.store_entities_as_slots is False
    assert d.action_texts == ("Hello there",)


def test_origins_point_at_the_lines() -> None:
    d = full_domain()
    assert d.intents["inform"].origin.line == 4
    assert d.slots["city"].origin.line == 20
    assert d.slots["city"].mappings[0].origin.line == 24
    assert d.forms["trip_form"].origin.file == "domain.yml"


def test_domain_to_dict_round_trips() -> None:
    d = full_domain()
    again = domain_from_dict(domain_to_dict(d))
    assert without_origins(again) == without_origins(replace(d, files=()))
    # and the written form is plain YAML-able data
    assert domain_to_dict(again) == domain_to_dict(d)


def test_defaults_of_an_empty_domain() -> None:
    d = domain_from_dict({})
    assert d.session_config.session_expiration_time == 60
    assert d.session_config.carry_over_slots is True
    assert d.store_entities_as_slots is True
    assert "restart" in d.intent_names
    assert without_origins(domain_from_dict(domain_to_dict(d))) == d


def _errors(text: str) -> list[str]:
    with pytest.raises(ProjectErrors) as info:
        domain_from_dict(load_yaml_text(textwrap.dedent(text), file="domain.yml"), "domain.yml")
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """\
            slots:
              age:
                type: integer
            """,
            ["domain.yml:3:", "(key 'type', value 'integer')", "Valid slot types: text, bool"],
            id="unknown-slot-type",
        ),
        pytest.param(
            """\
            slots:
              mention:
                type: unfeaturized
            """,
            ["domain.yml:3:", "value 'unfeaturized'", "are 'type: any'", "since Rasa 3.0"],
            id="rasa-2-unfeaturized-slot",
        ),
        pytest.param(
            """\
            slots:
              mention:
                type: rasa.shared.core.slots.UnfeaturizedSlot
            """,
            ["domain.yml:3:", "are 'type: any'", "since Rasa 3.0"],
            id="rasa-2-unfeaturized-slot-class",
        ),
        pytest.param(
            """\
            slots:
              city:
                type: text
                auto_fill: false
            """,
            [
                "domain.yml:4:",
                "(key 'auto_fill')",
                "'mappings: [{type: from_entity, entity: city}]' where an entity",
                "'mappings: [{type: custom}]' otherwise",
            ],
            id="rasa-2-auto-fill",
        ),
        pytest.param(
            """\
            slots:
              age:
                type: txt
            """,
            ["domain.yml:3:", "Did you mean 'text'?"],
            id="slot-type-typo",
        ),
        pytest.param(
            """\
            slots:
              age:
                mappings: []
            """,
            ["domain.yml:2:", "slot 'age' has no type", "(key 'type')"],
            id="slot-without-type",
        ),
        pytest.param(
            """\
            slots:
              size:
                type: categorical
                mappings: []
            """,
            ["domain.yml:2:", "categorical slot 'size' needs a non-empty list of values"],
            id="categorical-without-values",
        ),
        pytest.param(
            """\
            slots:
              temp:
                type: float
                min_value: 5
                max_value: 1
            """,
            ["domain.yml:5:", "empty range", "(key 'max_value')"],
            id="bad-float-range",
        ),
        pytest.param(  # the range's width would be infinite: every feature of the slot NaN
            """\
            slots:
              temp:
                type: float
                min_value: -.inf
            """,
            ["domain.yml:4:", "'min_value' of slot 'temp' must be a finite number", "min_value"],
            id="infinite-float-bound",
        ),
        pytest.param(  # was an OverflowError building the domain
            "session_config:\n  session_expiration_time: 6" + "0" * 400 + "\n",
            ["domain.yml:2:", "session_expiration_time must be a number of minutes"],
            id="huge-session-expiration",
        ),
        pytest.param(  # NaN never compared above any idle time: sessions never expired
            "session_config:\n  session_expiration_time: .nan\n",
            ["domain.yml:2:", "session_expiration_time must be a number of minutes, not nan"],
            id="nan-session-expiration",
        ),
        pytest.param(  # float() refuses such an integer: was an OverflowError
            "slots:\n  temp:\n    type: float\n    max_value: 1" + "0" * 400 + "\n",
            ["domain.yml:4:", "'max_value' of slot 'temp' must be a finite number"],
            id="huge-float-bound",
        ),
        pytest.param(
            """\
            slots:
              temp:
                type: float
                max_value: high
            """,
            ["domain.yml:4:", "'max_value' of slot 'temp' must be a number", "(key 'max_value'"],
            id="float-bound-not-a-number",
        ),
        pytest.param(
            """\
            slots:
              name:
                type: text
                values: [a]
            """,
            ["domain.yml:4:", "'values' is only valid for categorical slots"],
            id="values-on-text-slot",
        ),
        pytest.param(
            """\
            slots:
              x:
                type: any
                influence_conversation: true
            """,
            ["domain.yml:4:", "cannot influence the conversation"],
            id="any-slot-influencing",
        ),
        pytest.param(
            """\
            slots:
              x:
                type: text
                auto_fill: false
            """,
            ["domain.yml:4:", "unknown key in slot 'x' (key 'auto_fill')"],
            id="unknown-slot-key",
        ),
        pytest.param(
            """\
            slots:
              x:
                type: text
                mappings:
                  - type: from_nowhere
            """,
            ["domain.yml:5:", "(key 'type', value 'from_nowhere')", "Valid mapping types"],
            id="unknown-mapping-type",
        ),
        pytest.param(
            """\
            slots:
              x:
                type: text
                mappings:
                  - type: from_entity
            """,
            ["domain.yml:5:", "from_entity mapping of slot 'x' needs 'entity'"],
            id="from-entity-without-entity",
        ),
        pytest.param(
            """\
            slots:
              x:
                type: text
                mappings:
                  - type: from_intent
                    intent: greet
            """,
            ["domain.yml:5:", "needs 'value'"],
            id="from-intent-without-value",
        ),
        pytest.param(
            """\
            slots:
              x:
                type: text
                mappings:
                  - type: from_text
                    conditions:
                      - requested_slot: x
            """,
            ["domain.yml:7:", "needs 'active_loop'"],
            id="condition-without-active-loop",
        ),
        pytest.param(
            """\
            responses:
              utter_hi: Hello
            """,
            ["domain.yml:2:", "response 'utter_hi' must be a list of variations"],
            id="response-not-a-list",
        ),
        pytest.param(
            """\
            responses:
              utter_hi:
                - channel: slack
            """,
            ["domain.yml:3:", "has nothing to send"],
            id="response-without-content",
        ),
        pytest.param(
            """\
            responses:
              utter_hi:
                - text: hi
                  condition:
                    - type: intent
                      name: x
            """,
            ["domain.yml:5:", "unknown response condition type"],
            id="response-condition-type",
        ),
        pytest.param(
            """\
            intents:
              - greet:
                  use_entities: [a]
                  ignore_entities: [b]
            """,
            ["domain.yml:4:", "both use_entities and ignore_entities"],
            id="use-and-ignore-entities",
        ),
        pytest.param(
            """\
            forms:
              f:
                required_slots: [a]
                slots: [b]
            """,
            ["domain.yml:4:", "unknown key in form 'f' (key 'slots')"],
            id="unknown-form-key",
        ),
        pytest.param(
            """\
            forms:
              - my_form
            """,
            ["domain.yml:1:", "'forms' must be a mapping"],
            id="forms-as-list",
        ),
        pytest.param(
            """\
            session_config:
              session_expiration_time: -5
            """,
            ["domain.yml:2:", "cannot be negative"],
            id="negative-session-time",
        ),
        pytest.param(
            """\
            templates:
              utter_hi:
                - text: hi
            """,
            ["domain.yml:1:", "(key 'templates')", "renamed 'responses'"],
            id="rasa-1-templates",
        ),
        pytest.param(
            """\
            intnets:
              - greet
            """,
            ["domain.yml:1:", "Did you mean 'intents'?"],
            id="unknown-top-level-key",
        ),
        pytest.param(
            """\
            slots:
              x:
                type: text
                mappings:
                  - type: from_text
                    not_intnet: greet
            """,
            ["domain.yml:6:", "(key 'not_intnet')", "Did you mean 'not_intent'"],
            id="misspelled-mapping-key",
        ),
    ],
)
def test_domain_errors(text: str, expected: list[str]) -> None:
    errors = _errors(text)
    assert len(errors) == 1, errors
    for needle in expected:
        assert needle in errors[0]


def test_what_rasas_domain_schema_lets_through_is_read_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keys Rasa's schema takes and ignores (its own test domains hold them): a rule list put
    in the domain, another key in session_config, Rasa 1's intent triggers. (A misspelling of
    a key we read, such as session_config's `carry_over_slots`, stays an error: Rasa would lose
    the setting silently.)"""
    text = textwrap.dedent(
        """\
        intents:
          - greet:
              triggers: utter_greet
        rules:
          - rule: r
        session_config:
          remark: kept short
        responses:
          utter_greet:
            - text: hi
        entities: [city]
        slots:
          departure:
            type: text
            mappings:
              - type: from_text
                entity: city
        """
    )
    with caplog.at_level(logging.WARNING):
        domain = domain_from_dict(load_yaml_text(text, file="domain.yml"), "domain.yml")
    assert list(domain.intents) == ["greet"]
    assert [m.type for m in domain.slots["departure"].mappings] == ["from_text"]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 4, warned
    assert (
        "domain.yml:17: unknown key in a from_text mapping of slot 'departure' (key 'entity'); "
        "not read (as in Rasa)"
    ) in warned
    assert any("intent 'greet' triggers 'utter_greet': not read" in w for w in warned)
    assert any("domain.yml:4: unknown key in the domain (key 'rules')" in w for w in warned)
    assert any("(key 'remark')" in w and "not read" in w for w in warned)


def test_all_domain_errors_are_reported() -> None:
    errors = _errors(
        """\
        slots:
          a:
            type: number
          b:
            type: categorical
        responses:
          utter_x: nope
        """
    )
    assert len(errors) == 3
