"""Profiles and the code-set grammar of the vLLM coder, without the engine.

The engine tests (test_vllm_coder.py) show the constraints at work; these show that the
constraint languages are the intended ones: the automaton accepts exactly a release's billable
code set (FY2026's 2026-04 and FY2027's 2026-10, each its own), the parsers accept exactly the
profile formats, and prompts come from the profile or a file.
"""

import random
import re
from collections.abc import Callable
from pathlib import Path

import llguidance
import pytest
import xgrammar as xgr

from drg.codeset.catalog import shipped_catalog
from worker.coders.exceptions import CoderError, CoderUnavailableError
from worker.coders.vllm.config import VLLMSettings
from worker.coders.vllm.grammar import (
    Automaton,
    automaton_rules,
    billable_codes,
    build_automaton,
    codes_regex,
    spell,
)
from worker.coders.vllm.profiles import CSV_SYSTEM, XML_SYSTEM, make_profile

pytestmark = pytest.mark.vllm


def accepts(automaton: Automaton, word: str) -> bool:
    state = 0
    for char in word:
        nxt = automaton.edges[state].get(char)
        if nxt is None:
            return False
        state = nxt
    return state in automaton.final


# Where FY2027's code set (2026-10) differs from FY2026's (2026-04), from the FY2027 change lists
# in drg/data/fy2027/icd10cm: new codes (QA1.71, QA1.790, the three-character J4B), a category
# split (I42.0 becomes a header over I42.00-I42.09) and a deleted code (T52.8X1A).
BILLABLE_IN_FY2027_ONLY = ("QA1.71", "QA1.790", "J4B", "I42.00")
BILLABLE_IN_FY2026_ONLY = ("I42.0", "T52.8X1A")


def settings(**overrides: object) -> VLLMSettings:
    return VLLMSettings.model_validate({"model": "/models/tiny", **overrides})


def release_codes(release: str) -> tuple[str, ...]:
    return billable_codes(shipped_catalog().codeset(release))


def char_tokenizer() -> tuple[xgr.TokenizerInfo, int]:
    """An xgrammar vocabulary of one token a printable character, and its stop token."""
    vocab = [chr(i) for i in range(32, 127)] + ["\n", "</s>"]
    info = xgr.TokenizerInfo(vocab, vocab_type=xgr.VocabType.RAW, stop_token_ids=[len(vocab) - 1])
    return info, len(vocab) - 1


@pytest.mark.parametrize(("release", "count"), [("2026-04", 74_719), ("2026-10", 74_879)])
def test_automaton_accepts_exactly_the_billable_codes(release: str, count: int) -> None:
    codes = release_codes(release)
    assert len(codes) == count
    billable = set(codes)
    automaton = build_automaton(spell(codes, dotted=False))
    assert automaton.size < 5_000  # shared suffixes: ~2,100 states instead of ~103,000
    assert all(accepts(automaton, code) for code in codes)
    # Every proper prefix of a billable code (categories and subcategories) is rejected, and so
    # is every one-character change that leaves the set.
    rng = random.Random(7)
    sample = rng.sample(codes, 2_000)
    prefixes = {code[:end] for code in sample for end in range(1, len(code))}
    assert not any(accepts(automaton, p) for p in prefixes)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    mutated = {c[:i] + rng.choice(alphabet) + c[i + 1 :] for c in sample for i in range(len(c))}
    assert {m for m in mutated if accepts(automaton, m)} == mutated & billable


def test_dotted_automaton_and_trie_regex_agree_with_the_code_set() -> None:
    codes = release_codes("2026-04")
    dotted_codes = spell(codes, dotted=True)
    automaton = build_automaton(dotted_codes)
    sample = random.Random(3).sample(dotted_codes, 500)
    assert all(accepts(automaton, code) for code in sample)
    assert not accepts(automaton, "S82201A")  # the csv profile writes codes with their dot
    pattern = re.compile(codes_regex(sample))
    assert all(pattern.fullmatch(code) for code in sample)
    assert not any(pattern.fullmatch(code[:-1]) for code in sample if len(code) > 3)


@pytest.mark.parametrize("dotted", [True, False])
def test_each_release_automaton_holds_its_own_fy2027_changes(dotted: bool) -> None:
    fy2026 = build_automaton(spell(release_codes("2026-04"), dotted=dotted))
    fy2027 = build_automaton(spell(release_codes("2026-10"), dotted=dotted))

    def written(code: str) -> str:
        return code if dotted else code.replace(".", "")

    new = [written(c) for c in BILLABLE_IN_FY2027_ONLY]
    old = [written(c) for c in BILLABLE_IN_FY2026_ONLY]
    assert [accepts(fy2027, c) for c in new + old] == [True] * len(new) + [False] * len(old)
    assert [accepts(fy2026, c) for c in new + old] == [False] * len(new) + [True] * len(old)
    # Codes that did not change are in both.
    assert [accepts(a, written("S82.201A")) for a in (fy2026, fy2027)] == [True, True]


def test_billable_codes_are_the_code_sets_own_undotted_and_sorted() -> None:
    codeset = shipped_catalog().codeset("2026-10")
    codes = billable_codes(codeset)
    assert list(codes) == sorted(r.code for r in codeset.records.values() if r.billable)
    assert {"J4B", "QA171", "I4200"} <= set(codes)
    assert "I420" not in codes


def test_automaton_rejects_a_code_set_that_is_not_prefix_free() -> None:
    with pytest.raises(ValueError, match="prefix-free"):
        build_automaton(["S82", "S8220"])
    with pytest.raises(ValueError, match="not a code"):
        build_automaton(["S82 1"])


def test_automaton_rules_spell_the_grammar_per_backend() -> None:
    automaton = build_automaton(["A01", "A02", "B01"])
    start, ebnf = automaton_rules(automaton, "ebnf", "c")
    assert start == "c_0"
    assert ebnf[0].startswith("c_0 ::= ")
    start, lark = automaton_rules(automaton, "lark", "c")
    assert start == "C_0"
    assert lark[0].startswith("C_0: ")


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("S82.201A, V18.4XXA", ("S82.201A", "V18.4XXA")),
        ("I10", ("I10",)),
        ("QA0.0101, R69", ("QA0.0101", "R69")),
    ],
)
def test_csv_profile_parses_its_format(text: str, codes: tuple[str, ...]) -> None:
    profile = make_profile(settings(profile="codes-csv"))
    assert profile.parse(text) == codes
    assert profile.kept_output(text) == text


@pytest.mark.parametrize(
    "text", ["", "S82.201A,V18.4XXA", "S82201A", "s82.201a", "S82.201A, ", "I10 because"]
)
def test_csv_profile_rejects_anything_else(text: str) -> None:
    profile = make_profile(settings(profile="codes-csv"))
    with pytest.raises(CoderError) as info:
        profile.parse(text)
    assert info.value.kind == "bad_output"


def test_xml_profile_parses_codes_and_discards_the_reasoning() -> None:
    profile = make_profile(settings(profile="codes-xml"))
    codes = "<codes><code>J9601</code><code>I10</code></codes>"
    text = "<reasoning>acute respiratory failure\nwith hypoxia</reasoning>" + codes
    assert profile.parse(text) == ("J9601", "I10")
    assert profile.kept_output(text) == codes
    assert profile.kept_output("<reasoning>unfinished") == ""
    for bad in (
        "<codes><code>J9601</code></codes>",  # no reasoning section
        "<reasoning></reasoning><codes></codes>",  # no code
        "<reasoning>a<b</reasoning><codes><code>J9601</code></codes>",  # "<" in the reasoning
        "<reasoning></reasoning><codes><code>J96.01</code></codes>",  # dotted
    ):
        with pytest.raises(CoderError):
            profile.parse(bad)


def test_format_bounds_hold_max_codes_and_reasoning_length() -> None:
    profile = make_profile(settings(profile="codes-xml", max_codes=2, reasoning_max_chars=5))
    three = "<reasoning></reasoning><codes>" + "<code>I10</code>" * 3 + "</codes>"
    with pytest.raises(CoderError):
        profile.parse(three)
    with pytest.raises(CoderError):
        profile.parse("<reasoning>123456</reasoning><codes><code>I10</code></codes>")
    longest = "<reasoning>12345</reasoning><codes>" + "<code>S82201A</code>" * 2 + "</codes>"
    assert profile.parse(longest) == ("S82201A", "S82201A")
    assert len(longest) == profile.max_output_chars()


def test_profiles_build_chat_messages_with_the_default_prompts() -> None:
    csv = make_profile(settings(profile="codes-csv"))
    assert csv.messages("Tibia fracture after a fall.") == [
        {"role": "system", "content": CSV_SYSTEM},
        {"role": "user", "content": "Tibia fracture after a fall."},
    ]
    assert CSV_SYSTEM == "You are a medical coding assistant. Respond ONLY with ICD-10-CM codes."
    xml = make_profile(settings(profile="codes-xml"))
    assert xml.messages("x")[0] == {"role": "system", "content": XML_SYSTEM}
    assert XML_SYSTEM.startswith("You are a clinical coding auditor")
    custom = make_profile(
        settings(profile="codes-xml", system_prompt="You are a clinical coding auditor.")
    )
    assert custom.messages("x")[0]["content"] == "You are a clinical coding auditor."


def test_prompts_come_from_a_file(tmp_path: Path) -> None:
    prompt_file = tmp_path / "prompts.toml"
    prompt_file.write_text(
        'system = "You are a clinical coding auditor at a payer."\n'
        'user = "Discharge summary:\\n{narrative}\\nCode it."\n'
    )
    profile = make_profile(settings(profile="codes-xml", prompt_file=prompt_file))
    assert profile.messages("Sepsis.") == [
        {"role": "system", "content": "You are a clinical coding auditor at a payer."},
        {"role": "user", "content": "Discharge summary:\nSepsis.\nCode it."},
    ]
    # A narrative that contains the placeholder is inserted as it is, not expanded again.
    assert (
        profile.messages("{narrative}")[1]["content"] == "Discharge summary:\n{narrative}\nCode it."
    )


@pytest.mark.parametrize(
    "content",
    ['user = "no placeholder"\n', 'system = "x"\nextra = "y"\n', "system = 1\n", "not toml ["],
)
def test_a_bad_prompt_file_fails_at_construction(tmp_path: Path, content: str) -> None:
    prompt_file = tmp_path / "prompts.toml"
    prompt_file.write_text(content)
    with pytest.raises(CoderUnavailableError):
        make_profile(settings(prompt_file=prompt_file))


def test_codeset_constraint_is_a_grammar_and_format_a_regex() -> None:
    csv = make_profile(settings(profile="codes-csv", max_codes=3))
    codes = release_codes("2026-04")
    codeset = csv.constraint("codeset", "xgrammar", codes)
    assert codeset.regex is None
    assert codeset.grammar is not None
    assert codeset.grammar.startswith('root ::= c_0 (", " c_0){0,2}\n')
    # Format and none do not depend on the codes.
    assert csv.constraint("format", "xgrammar", ()).regex == csv.format_regex()
    assert csv.constraint("format", "xgrammar", codes) == csv.constraint("format", "xgrammar", ())
    assert csv.constraint("none", "xgrammar", codes) == type(codeset)()
    # Each release's code set is its own grammar.
    assert csv.constraint("codeset", "xgrammar", release_codes("2026-10")) != codeset
    with pytest.raises(ValueError, match="empty code set"):
        csv.constraint("codeset", "xgrammar", ())
    lark = csv.constraint("codeset", "guidance", codes).grammar
    assert lark is not None
    assert lark.startswith('start: CODE (", " CODE){0,2}\nCODE: C_0\n')
    assert llguidance.LLMatcher.validate_grammar(llguidance.grammar_from("lark", lark)) == ""


def grammar_checker(profile: str, release: str) -> Callable[[str], bool]:
    """Whether the profile's compiled xgrammar code-set grammar of ``release`` accepts a whole
    output (then the stop token)."""
    info, stop = char_tokenizer()
    grammar = make_profile(settings(profile=profile, max_codes=3)).constraint(
        "codeset", "xgrammar", release_codes(release)
    )
    assert grammar.grammar is not None
    compiled = xgr.GrammarCompiler(info, max_threads=1).compile_grammar(grammar.grammar)

    def complete(text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled)
        return matcher.accept_string(text) and matcher.accept_token(stop)

    return complete


@pytest.mark.parametrize(
    ("profile", "accepted", "rejected"),
    [
        (
            "codes-csv",
            ["S82.201A, V18.4XXA", "I10", "QA0.0101, R69, E11.9"],
            ["S82.201", "I10, E11", "E11.9, S82201A", "Z99.99"],
        ),
        (
            "codes-xml",
            [
                "<reasoning>fall from bike</reasoning><codes><code>S82201A</code></codes>",
                "<reasoning></reasoning><codes><code>J9601</code><code>I10</code></codes>",
            ],
            [
                "<reasoning></reasoning><codes><code>J960</code></codes>",  # not billable
                "<reasoning></reasoning><codes><code>J96.01</code></codes>",
            ],
        ),
    ],
)
def test_codeset_grammar_lets_through_billable_codes_only(
    profile: str, accepted: list[str], rejected: list[str]
) -> None:
    """The xgrammar grammar, compiled against a one-character-a-token vocabulary."""
    complete = grammar_checker(profile, "2026-04")
    assert [complete(text) for text in accepted] == [True] * len(accepted)
    assert [complete(text) for text in rejected] == [False] * len(rejected)


@pytest.mark.parametrize("profile", ["codes-csv", "codes-xml"])
def test_each_release_grammar_lets_through_its_own_billable_codes(profile: str) -> None:
    """The grammars the engine compiles: FY2027's takes FY2027's new codes and refuses what
    FY2027 deleted or made a header; FY2026's the reverse."""

    def output(code: str) -> str:
        if profile == "codes-csv":
            return code
        return f"<reasoning></reasoning><codes><code>{code.replace('.', '')}</code></codes>"

    new = [output(c) for c in BILLABLE_IN_FY2027_ONLY]
    old = [output(c) for c in BILLABLE_IN_FY2026_ONLY]
    fy2027 = grammar_checker(profile, "2026-10")
    fy2026 = grammar_checker(profile, "2026-04")
    assert [fy2027(text) for text in new + old] == [True] * len(new) + [False] * len(old)
    assert [fy2026(text) for text in new + old] == [False] * len(new) + [True] * len(old)
