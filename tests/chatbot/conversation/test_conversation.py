from __future__ import annotations

from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.conversation.state import INTENT, PREV_ACTION
from tests.helpers import domain_of

DOMAIN = domain_of(
    """
intents: [greet, inform, deny]
entities: [cuisine]
slots:
  cuisine:
    type: text
    mappings: [{type: from_entity, entity: cuisine}]
  name:
    type: text
    initial_value: anon
    influence_conversation: false
    mappings: []
forms:
  food_form:
    required_slots: [cuisine]
responses:
  utter_greet: [{text: hi}]
  utter_ask_cuisine: [{text: "which cuisine?"}]
"""
)


def user(intent: str, **entities: str) -> dict:
    return ev.user(
        f"/{intent}",
        {
            "intent": {"name": intent, "confidence": 1.0},
            "entities": [{"entity": k, "value": v} for k, v in entities.items()],
        },
    )


def greeting() -> list[dict]:
    return [ev.action("action_listen"), user("greet"), ev.action("utter_greet"), ev.bot("hi")]


def test_replay_derives_slots_loop_and_latest_message() -> None:
    conv = Conversation(
        "u",
        DOMAIN,
        [
            *greeting(),
            ev.action("action_listen"),
            user("inform", cuisine="thai"),
            ev.slot("cuisine", "thai"),
            ev.action("food_form"),
            ev.active_loop("food_form"),
        ],
    )
    assert conv.slots["cuisine"] == "thai"
    assert conv.slots["name"] == "anon"  # initial value
    assert conv.active_loop_name == "food_form"
    assert conv.latest_intent == "inform"
    assert conv.latest_action_name == "food_form"
    assert len(conv.states) == 4  # one state before each action


def test_restart_resets_state_and_schedules_a_session_start() -> None:
    conv = Conversation(
        "u", DOMAIN, [*greeting(), ev.slot("cuisine", "thai"), ev.simple("restart")]
    )
    assert conv.slots["cuisine"] is None
    assert conv.states == []
    assert conv.followup_action == "action_session_start"
    assert conv.applied_events() == []


def test_rewind_removes_the_last_user_turn() -> None:
    conv = Conversation(
        "u", DOMAIN, [*greeting(), ev.action("action_listen"), user("deny"), ev.simple("rewind")]
    )
    assert conv.latest_intent == "greet"
    assert conv.latest_action_name == "utter_greet"
    assert [e["event"] for e in conv.applied_events()] == ["action", "user", "action", "bot"]
    # The state history is rebuilt to what it was before the reverted turn.
    assert conv.states == Conversation("u", DOMAIN, greeting()).states


def test_undo_reverts_the_last_action() -> None:
    conv = Conversation("u", DOMAIN, [*greeting(), ev.simple("undo")])
    assert conv.latest_action_name == "action_listen"
    assert len(conv.states) == 1


def test_session_started_clears_history_but_keeps_later_slot_events() -> None:
    conv = Conversation(
        "u",
        DOMAIN,
        [
            *greeting(),
            ev.slot("cuisine", "thai"),
            ev.action("action_session_start"),
            ev.simple("session_started"),
            ev.slot("cuisine", "thai"),
            ev.action("action_listen"),
        ],
    )
    assert conv.slots["cuisine"] == "thai"
    assert len(conv.states) == 1
    assert dict(conv.states[0])[PREV_ACTION] is None


def test_incremental_states_equal_a_full_replay() -> None:
    events = []
    for i in range(50):
        events += [
            ev.action("action_listen"),
            user("inform" if i % 2 else "greet", cuisine=str(i)),
            ev.slot("cuisine", str(i)),
            ev.action("utter_greet"),
        ]
    incremental = Conversation("u", DOMAIN)
    for event in events:
        incremental.append(event)
    assert incremental.states == Conversation("u", DOMAIN, events).states
    assert incremental.recent_states(3) == incremental.past_states()[-3:]
    short = Conversation("u", DOMAIN, greeting())
    assert short.recent_states(10) == short.past_states()  # more than there are: all of them
    assert incremental.num_states == len(incremental.past_states())


def test_fork_is_independent() -> None:
    conv = Conversation("u", DOMAIN, greeting())
    fork = conv.fork()
    fork.append(ev.slot("cuisine", "thai"))
    fork.append(ev.action("action_listen"))
    assert conv.slots["cuisine"] is None
    assert len(conv.states) == 2 and len(fork.states) == 3


def test_form_goal_features_appear_while_the_form_is_active() -> None:
    conv = Conversation(
        "u",
        DOMAIN,
        [
            *greeting(),
            ev.action("food_form"),
            ev.active_loop("food_form"),
            ev.slot("requested_slot", "cuisine"),
        ],
    )
    state = dict(conv.current_state())
    assert state["requested_slot"] == "cuisine"
    assert state["missing_slots"] == frozenset({"cuisine"})
    assert state[INTENT] == "greet"


def test_as_tracker_has_rasa_keys() -> None:
    tracker = Conversation("u", DOMAIN, greeting()).as_tracker()
    assert {
        "sender_id",
        "slots",
        "latest_message",
        "events",
        "paused",
        "followup_action",
        "active_loop",
        "latest_action_name",
    } <= set(tracker)
    assert tracker["latest_message"]["intent"]["name"] == "greet"


def test_the_current_state_is_rebuilt_after_every_event() -> None:
    """``current_state()`` is kept between two events; every kind of event that changes it
    (a slot, the form, a user message, an action, a rewind, an undo, a restart) is seen."""
    events = [
        *greeting(),
        ev.action("action_listen"),
        user("inform", cuisine="thai"),
        ev.slot("cuisine", "thai"),
        ev.action("food_form"),
        ev.active_loop("food_form"),
        ev.slot("requested_slot", "cuisine"),
        ev.action("action_listen"),
        user("deny"),
        ev.simple("rewind"),
        ev.action("food_form"),
        ev.simple("undo"),
        ev.active_loop(None),
        ev.simple("restart"),
    ]
    conv = Conversation("u", DOMAIN)
    seen = set()
    for i, event in enumerate(events):
        before = conv.current_state()
        assert conv.current_state() is before  # kept while nothing happens
        fork = conv.fork()
        conv.append(event)
        fresh = Conversation("u", DOMAIN, events[: i + 1])
        assert conv.current_state() == fresh.current_state(), (i, event)
        assert fork.current_state() == before  # the fork did not see the event
        seen.add(conv.current_state())
    assert len(seen) > 5  # the events did change the state


def test_a_form_running_again_collapses_its_turns_for_the_state_not_the_latest_message() -> None:
    """As Rasa: the policies read the turns of a form on its happy path as one step (the state
    keeps the message that started it), while ``latest_message`` is the user's latest (the
    tracker's JSON and the actions read it; it used to go back to the first message)."""
    conv = Conversation("c", DOMAIN)
    for event in (
        ev.action("action_listen"),
        user("greet"),
        ev.action("food_form"),
        ev.active_loop("food_form"),
        ev.slot("requested_slot", "cuisine"),
        ev.action("action_listen"),
        user("inform", cuisine="thai"),
        ev.slot("cuisine", "thai"),
    ):
        conv.append(event)
    assert conv.is_loop_rerun("food_form")
    conv.append(ev.action("food_form"))
    assert conv.latest_message["text"] == "/inform"
    assert conv.latest_intent == "inform" and conv.latest_entities[0]["value"] == "thai"
    assert conv.state_message["text"] == "/greet"
    assert dict(conv.current_state())[INTENT] == "greet"
    assert conv.as_tracker()["latest_message"]["intent"]["name"] == "inform"


def test_entities_added_as_rasas_only_after_the_user_spoke_and_each_once() -> None:
    """rasa-sdk's EntitiesAdded: right after a user message its entities join the latest
    message's (each once); from a later action (the latest action is not a listen) nothing."""
    conv = Conversation("c", DOMAIN)
    thai = {"entity": "cuisine", "value": "thai"}
    greek = {"entity": "cuisine", "value": "greek"}
    conv.append(ev.action("action_listen"))
    conv.append(user("inform", cuisine="thai"))
    conv.append({"event": "entities", "entities": [thai, greek]})
    assert conv.latest_entities == [thai, greek]
    conv.append(ev.action("utter_greet"))
    conv.append({"event": "entities", "entities": [{"entity": "cuisine", "value": "fish"}]})
    assert conv.latest_entities == [thai, greek]


def test_an_action_run_while_a_loop_is_active_ends_its_interruption() -> None:
    """Rasa's ``set_latest_action``: whatever action runs next while the form is active (the
    form itself, or another) clears ``is_interrupted``; a form running again clears its
    rejection too."""
    for action in ("utter_greet", "food_form"):
        conv = Conversation("c", DOMAIN, [ev.active_loop("food_form"), ev.loop_interrupted(True)])
        conv.append(ev.action_rejected("food_form"))
        assert conv.loop.is_interrupted and conv.loop.rejected
        conv.append(ev.action(action))
        assert not conv.loop.is_interrupted
        assert conv.loop.rejected is (action != "food_form")
        assert conv.as_tracker()["active_loop"]["is_interrupted"] is False


def test_a_form_running_again_on_its_happy_path_ends_its_interruption() -> None:
    conv = Conversation(
        "c",
        DOMAIN,
        [
            ev.action("food_form"),
            ev.active_loop("food_form"),
            ev.slot("requested_slot", "cuisine"),
            ev.action("action_listen"),
            user("inform", cuisine="thai"),
            ev.loop_interrupted(True),
        ],
    )
    assert conv.is_loop_rerun("food_form") and conv.loop.is_interrupted
    conv.append(ev.action("food_form"))
    assert not conv.loop.is_interrupted
