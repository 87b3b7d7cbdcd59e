"""Prompt/output profiles: what the model is asked, what it may write, and how that is read.

Two profiles match the two model families the worker runs:

- ``codes-csv`` (merged models such as AxisMapper, Qwen2.5-7B): the user turn is the narrative,
  the answer is dotted codes separated by ", " (``S82.201A, V18.4XXA``).
- ``codes-xml`` (base + LoRA models such as FraudLens, Llama 3.1 8B): the user turn is the
  discharge summary, the answer ``<reasoning>...</reasoning><codes><code>J9601</code>...</codes>``
  with undotted codes. The reasoning is discarded: never returned, logged or traced.

Each profile yields the constraint handed to the engine's structured outputs (a regex of the
format, or a grammar of one release's billable codes) and a strict parser for the same
language, so a parsed output is code-shaped strings only whatever the narrative said. Every
output the constraint allows is at most `max_output_chars` long; with one token per character
at worst, that bounds ``max_tokens`` so that no output is ever cut.
"""

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from schemas.icd10cm import DOTTED_CODE, UNDOTTED_CODE
from worker.coders.exceptions import CoderError, CoderUnavailableError
from worker.coders.vllm.config import Constraint, Profile, StructuredOutputsBackend, VLLMSettings
from worker.coders.vllm.grammar import automaton_rules, build_automaton, spell

NARRATIVE: Final = "{narrative}"

# Reasoning: printable ASCII and newlines, no "<" (so it cannot close early or open a tag).
REASONING_CHARS: Final = r"[\n -;=-~]"
_REASONING_EBNF: Final = r"[\n -;=-~]"

CSV_SYSTEM: Final = "You are a medical coding assistant. Respond ONLY with ICD-10-CM codes."
XML_SYSTEM: Final = (
    "You are a clinical coding auditor. Read the discharge summary and assign ICD-10-CM "
    "diagnosis codes, principal diagnosis first. Think briefly inside <reasoning></reasoning>, "
    "then answer <codes><code>CODE</code>...</codes> with codes written without dots."
)

_SEPARATOR: Final = ", "
_XML_HEAD: Final = "<reasoning>"
_XML_MID: Final = "</reasoning><codes>"
_XML_TAIL: Final = "</codes>"


@dataclass(frozen=True, slots=True)
class EngineConstraint:
    """What the engine's structured outputs get: a regex, a grammar, or neither (none)."""

    regex: str | None = None
    grammar: str | None = None


@dataclass(frozen=True, slots=True)
class Prompts:
    system: str
    user: str  # contains NARRATIVE once


class OutputProfile:
    """One profile with its prompts and bounds, ready to build messages, constraints, parse."""

    name: Profile
    dotted: bool

    def __init__(self, prompts: Prompts, max_codes: int, reasoning_max_chars: int) -> None:
        self.prompts = prompts
        self.max_codes = max_codes
        self.reasoning_max_chars = reasoning_max_chars
        self._pattern = re.compile(self.format_regex())

    # -- prompts --------------------------------------------------------------------------------
    def messages(self, narrative: str) -> list[dict[str, str]]:
        user = self.prompts.user.replace(NARRATIVE, narrative)
        return [
            {"role": "system", "content": self.prompts.system},
            {"role": "user", "content": user},
        ]

    # -- constraints ----------------------------------------------------------------------------
    def code_regex(self) -> str:
        return DOTTED_CODE if self.dotted else UNDOTTED_CODE

    def format_regex(self) -> str:
        raise NotImplementedError

    def frame_ebnf(self, code: str) -> str:
        """The ``root`` rule around a code nonterminal, in xgrammar's EBNF."""
        raise NotImplementedError

    def frame_lark(self, code: str) -> str:
        """The ``start`` rule around a code terminal, in llguidance's Lark."""
        raise NotImplementedError

    def max_output_chars(self) -> int:
        raise NotImplementedError

    def constraint(
        self, constrain: Constraint, backend: StructuredOutputsBackend, codes: Iterable[str]
    ) -> EngineConstraint:
        """What the engine enforces: nothing (``none``), the format regex (``format``), or the
        profile's format around a grammar of exactly ``codes`` (``codeset``), in the syntax of
        ``backend`` (xgrammar: EBNF; guidance: Lark).

        ``codes``: one release's billable codes, undotted (``grammar.billable_codes``); read
        only for ``codeset``. CPU work of ~0.3 s for a release (build it off the event loop).
        Raises ValueError when ``codes`` is empty, holds a string that is not code-shaped or is
        not prefix-free (a code that continues another cannot both be billable)."""
        if constrain == "none":
            return EngineConstraint()
        if constrain == "format":
            return EngineConstraint(regex=self.format_regex())
        automaton = build_automaton(spell(codes, dotted=self.dotted))
        if backend == "xgrammar":
            start, rules = automaton_rules(automaton, "ebnf", "c")
            return EngineConstraint(grammar="\n".join([self.frame_ebnf(start), *rules]) + "\n")
        start, rules = automaton_rules(automaton, "lark", "c")
        lines = [self.frame_lark("CODE"), f"CODE: {start}", *rules]
        return EngineConstraint(grammar="\n".join(lines) + "\n")

    # -- parsing --------------------------------------------------------------------------------
    def parse(self, text: str) -> tuple[str, ...]:
        """Codes as written, principal first; CoderError(bad_output) unless ``text`` is exactly
        the profile's format. Never returns anything but code-shaped strings."""
        if not self._pattern.fullmatch(text):
            raise CoderError("bad_output", f"output is not in the {self.name} format")
        return self._codes(text)

    def _codes(self, text: str) -> tuple[str, ...]:
        raise NotImplementedError

    def kept_output(self, text: str) -> str:
        """What of the model's output may be kept in memory (``CoderResult.raw_output``)."""
        return text


class CsvProfile(OutputProfile):
    name: Profile = "codes-csv"
    dotted = True

    def format_regex(self) -> str:
        code = self.code_regex()
        return f"{code}({_SEPARATOR}{code}){{0,{self.max_codes - 1}}}"

    def frame_ebnf(self, code: str) -> str:
        return f'root ::= {code} ("{_SEPARATOR}" {code}){{0,{self.max_codes - 1}}}'

    def frame_lark(self, code: str) -> str:
        return f'start: {code} ("{_SEPARATOR}" {code}){{0,{self.max_codes - 1}}}'

    def max_output_chars(self) -> int:
        return self.max_codes * 8 + (self.max_codes - 1) * len(_SEPARATOR)

    def _codes(self, text: str) -> tuple[str, ...]:
        return tuple(text.split(_SEPARATOR))


class XmlProfile(OutputProfile):
    name: Profile = "codes-xml"
    dotted = False

    def format_regex(self) -> str:
        reasoning = f"{REASONING_CHARS}{{0,{self.reasoning_max_chars}}}"
        codes = f"(<code>{self.code_regex()}</code>){{1,{self.max_codes}}}"
        return f"{_XML_HEAD}{reasoning}{_XML_MID}{codes}{_XML_TAIL}"

    def frame_ebnf(self, code: str) -> str:
        reasoning = f"{_REASONING_EBNF}{{0,{self.reasoning_max_chars}}}"
        codes = f'("<code>" {code} "</code>"){{1,{self.max_codes}}}'
        return f'root ::= "{_XML_HEAD}" {reasoning} "{_XML_MID}" {codes} "{_XML_TAIL}"'

    def frame_lark(self, code: str) -> str:
        reasoning = f"/{REASONING_CHARS}{{0,{self.reasoning_max_chars}}}/"
        codes = f'("<code>" {code} "</code>"){{1,{self.max_codes}}}'
        return f'start: "{_XML_HEAD}" {reasoning} "{_XML_MID}" {codes} "{_XML_TAIL}"'

    def max_output_chars(self) -> int:
        per_code = len("<code>") + 7 + len("</code>")
        fixed = len(_XML_HEAD) + len(_XML_MID) + len(_XML_TAIL)
        return fixed + self.reasoning_max_chars + self.max_codes * per_code

    def _codes(self, text: str) -> tuple[str, ...]:
        # The reasoning cannot contain "<", so the codes section starts at the one _XML_MID.
        _, _, section = text.partition(_XML_MID)
        return tuple(re.findall(r"<code>([0-9A-Z]+)</code>", section))

    def kept_output(self, text: str) -> str:
        # The reasoning is discarded: only the codes section is kept, and nothing when the
        # output has no codes section (the reasoning could not be told apart).
        _, found, section = text.partition(_XML_MID)
        return "<codes>" + section if found else ""


_PROFILES: Final[dict[Profile, type[OutputProfile]]] = {
    "codes-csv": CsvProfile,
    "codes-xml": XmlProfile,
}
_DEFAULT_SYSTEM: Final[dict[Profile, str]] = {"codes-csv": CSV_SYSTEM, "codes-xml": XML_SYSTEM}


def _prompts(settings: VLLMSettings) -> Prompts:
    system = settings.system_prompt or _DEFAULT_SYSTEM[settings.profile]
    user = NARRATIVE
    if settings.prompt_file is not None:
        try:
            data = tomllib.loads(settings.prompt_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CoderUnavailableError(f"cannot read prompt_file: {exc}") from exc
        unknown = set(data) - {"system", "user"}
        if unknown or not all(isinstance(v, str) for v in data.values()):
            raise CoderUnavailableError("prompt_file holds only `system` and `user` strings")
        system = data.get("system", system)
        user = data.get("user", user)
    if user.count(NARRATIVE) != 1:
        raise CoderUnavailableError(f"the user prompt must contain {NARRATIVE} exactly once")
    return Prompts(system=system, user=user)


def make_profile(settings: VLLMSettings) -> OutputProfile:
    return _PROFILES[settings.profile](
        _prompts(settings), settings.max_codes, settings.reasoning_max_chars
    )
