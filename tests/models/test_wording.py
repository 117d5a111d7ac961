from __future__ import annotations

from dca.abilities import Wording, check_ability
from dca.types import Evidence, Step
from dca.verifier import Verifier
from dca.wording import LMWording, TemplateWording, question_sentence, restate, word_checked, wording_messages

STEPS = [Step(text="x1 = 5829 - 5735", target="x1", expr="5829 - 5735", value=94),
         Step(text="answer = x1 / 5735 * 100", target="answer", expr="x1 / 5735 * 100", value=1.639058)]
FACTS = [Evidence(id="a", text="Net revenue 2015 = 5,829"), Evidence(id="b", text="Net revenue 2014 = 5,735")]


def test_template_states_value_how_and_sources():
    text = TemplateWording().word("What was the growth?", 1.639058, STEPS, FACTS)
    assert text == "The answer is 1.6391 (computed from x1 / 5735 * 100; sources: [1], [2])."
    assert Verifier().check_wording(text, 1.639058).ok
    assert TemplateWording().word("Q?", 3, [], []) == "The answer is 3."


def test_restatement_targets_state_the_value():
    assert restate("What was the net change in revenue , in millions?", "94", ["[1]"], 0) == \
        "The net change in revenue, in millions was 94 [1]."
    assert restate("Tom has 3 cats. How many legs do they have?", "12", [], 0) == "The answer is 12 legs."
    assert question_sentence("Tom has 3 cats. How many legs do they have?") == "How many legs do they have?"
    msgs = wording_messages("Tom has 3 cats. How many legs?", "12", 2)
    assert "Value: 12" in msgs[0]["content"] and "Sources: [1], [2]" in msgs[0]["content"]


def test_lm_wording_writes_one_line(micro_models):
    w = LMWording(micro_models["wording"], threads=1, max_new_tokens=24)
    check_ability("wording", w)
    assert isinstance(w, Wording)
    text = w.word("What was the growth?", 1.639058, STEPS, FACTS)
    assert isinstance(text, str) and text and "\n" not in text


class _Says:
    def __init__(self, text: str):
        self.text = text

    def word(self, task, answer, steps, evidence):
        return self.text


def test_fallback_when_the_sentence_misses_the_value():
    v = Verifier()
    text, fell_back, reason = word_checked(_Says("Revenue grew by about 2 percent [1]."), v, "Q?", 1.639058, STEPS, FACTS)
    assert fell_back and "does not state the verified value" in reason
    assert text.startswith("The answer is 1.6391")
    text, fell_back, _ = word_checked(_Says("Revenue grew 1.64% from 2014 to 2015 [1][2]."), v, "Q?", 1.639058,
                                      STEPS, FACTS)
    assert not fell_back and text.startswith("Revenue grew 1.64%")
