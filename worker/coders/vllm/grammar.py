"""Code-set constraint: a grammar that lets the model write only billable ICD-10-CM codes.

The billable codes of a release (74,719 in FY2026's 2026-04, 74,879 in FY2027's 2026-10) form a
prefix-free set (a billable code is a leaf of the code list). Their minimal acyclic automaton
(DAFSA) is tiny, because codes share suffixes: 7th characters, laterality digits and "XX"
placeholders repeat across thousands of codes. The undotted set needs ~2,100 states against
~103,000 trie nodes; each state becomes one grammar rule (xgrammar EBNF) or one terminal
(llguidance Lark), so the grammar stays a few tens of kilobytes. A trie-shaped regex
(`codes_regex`) is also provided for regex-only backends; it is ~170 kB.

Pure functions of the codes they are given, no vLLM import and no file reading: the code sets
come from ``drg.codeset.catalog`` (one per release), the grammar text is built once per release
and handed to the engine, which compiles and caches it (the coder's warm-up pays the compile,
see docs/engines.md).
"""

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from drg.codeset.memory import MemoryCodeSet
from drg.codeset.normalize import dotted as dotted_form

GrammarSyntax = Literal["ebnf", "lark"]

# Characters a code may contain; anything else in a code list is a bug in the list.
_CODE_CHARS: Final = re.compile(r"[A-Z0-9.]+")


@dataclass(frozen=True, slots=True)
class Automaton:
    """A minimal acyclic DFA. State 0 is the start; ``edges[s]`` maps a character to the next
    state; ``final`` holds the accepting states (no edges leave them: the set is prefix-free
    after `build_automaton` checked it)."""

    edges: tuple[dict[str, int], ...]
    final: frozenset[int]

    @property
    def size(self) -> int:
        return len(self.edges)


def spell(codes: Iterable[str], *, dotted: bool) -> list[str]:
    """Codes as the profile writes them: undotted ("S82201A") or dotted ("S82.201A")."""
    return sorted({dotted_form(c) if dotted else c for c in codes})


def build_automaton(words: Sequence[str]) -> Automaton:
    """The minimal DFA accepting exactly ``words`` (built as a trie, then merged bottom-up by
    each node's signature: finality plus outgoing edges)."""
    if not words:
        raise ValueError("empty code set")
    trie: list[dict[str, int]] = [{}]
    ends: set[int] = set()
    for word in words:
        if not _CODE_CHARS.fullmatch(word):
            raise ValueError(f"not a code: {word!r}")
        node = 0
        for char in word:
            nxt = trie[node].get(char)
            if nxt is None:
                nxt = len(trie)
                trie.append({})
                trie[node][char] = nxt
            node = nxt
        ends.add(node)
    if any(trie[node] for node in ends):
        raise ValueError("the code set is not prefix-free: a code continues another code")

    # Post-order: children get their canonical id before their parent.
    canonical: dict[tuple[bool, tuple[tuple[str, int], ...]], int] = {}
    new_id: dict[int, int] = {}
    edges: list[dict[str, int]] = []
    final: set[int] = set()
    order: list[int] = []
    stack = [(0, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in trie[node].values())
    for node in order:
        signature = (
            node in ends,
            tuple(sorted((char, new_id[child]) for char, child in trie[node].items())),
        )
        state = canonical.get(signature)
        if state is None:
            state = canonical[signature] = len(edges)
            edges.append(dict(signature[1]))
            if signature[0]:
                final.add(state)
        new_id[node] = state
    # Renumber so that the start state is 0 (it was merged last).
    start = new_id[0]
    remap = {start: 0, 0: start}

    def renumber(state: int) -> int:
        return remap.get(state, state)

    renumbered = [dict[str, int]() for _ in edges]
    for state, out in enumerate(edges):
        renumbered[renumber(state)] = {c: renumber(t) for c, t in out.items()}
    return Automaton(tuple(renumbered), frozenset(renumber(s) for s in final))


def _grouped(edges: dict[str, int]) -> list[tuple[list[str], int]]:
    """Outgoing edges grouped by target: [(chars, target)], in a stable order."""
    by_target: dict[int, list[str]] = {}
    for char, target in sorted(edges.items()):
        by_target.setdefault(target, []).append(char)
    return sorted(
        ((chars, target) for target, chars in by_target.items()), key=lambda item: item[0][0]
    )


def _char_class(chars: list[str]) -> str:
    if len(chars) == 1:
        return re.escape(chars[0]) if chars[0] == "." else chars[0]
    return "[" + "".join("\\." if c == "." else c for c in chars) + "]"


def _literal(chars: list[str]) -> str:
    """One EBNF/Lark element matching any one of ``chars``."""
    if len(chars) == 1:
        return f'"{chars[0]}"'
    return "[" + "".join("\\." if c == "." else c for c in chars) + "]"


def automaton_rules(
    automaton: Automaton, syntax: GrammarSyntax, prefix: str
) -> tuple[str, list[str]]:
    """Grammar text for the automaton: the start symbol's name and its definitions.

    Only states entered from several others (shared suffixes) get a definition of their own;
    the others are written inline, as nested groups. That halves the grammar text and the time
    to parse it, which vLLM spends again on every request (~8 ms instead of ~17 ms here).
    ``ebnf`` (xgrammar, GBNF-like): rules ``prefix_N ::= "A" prefix_M | [BC] ("1" | "2")``.
    ``lark`` (llguidance): upper-case terminals ``PREFIX_N: "A" PREFIX_M | /[BC]/ ...``, so the
    whole code is one lexeme that llguidance matches with its lazy regex automaton.
    """
    name = prefix.upper() if syntax == "lark" else prefix.lower()
    entries = Counter(target for out in automaton.edges for target in out.values())
    named = {state for state, count in entries.items() if count > 1 and automaton.edges[state]}

    def element(chars: list[str]) -> str:
        if syntax == "lark" and len(chars) > 1:
            return f"/{_char_class(chars)}/"
        return _literal(chars)

    def expression(state: int) -> str:
        alternatives: list[str] = []
        for chars, target in _grouped(automaton.edges[state]):
            if not automaton.edges[target]:
                alternatives.append(element(chars))  # a final state: the code ends here
            elif target in named:
                alternatives.append(f"{element(chars)} {name}_{target}")
            else:
                alternatives.append(f"{element(chars)} {expression(target)}")
        if len(alternatives) == 1:
            return alternatives[0]
        return "(" + " | ".join(alternatives) + ")"

    separator = ": " if syntax == "lark" else " ::= "
    lines = [f"{name}_{state}{separator}{expression(state)}" for state in [0, *sorted(named)]]
    return f"{name}_0", lines


def codes_regex(words: Sequence[str]) -> str:
    """One regex alternation of ``words``, shaped as a trie (no sharing of suffixes)."""
    trie: dict[str, dict[str, object]] = {}
    for word in words:
        node: dict[str, dict[str, object]] = trie
        for char in word:
            node = node.setdefault(char, {})  # type: ignore[assignment]  # nested trie dicts
        node[""] = {}

    def emit(node: dict[str, dict[str, object]]) -> str:
        ends_here = "" in node
        leaves = sorted(c for c, child in node.items() if c and set(child) == {""})
        inner = sorted(c for c, child in node.items() if c and set(child) != {""})
        parts: list[str] = []
        if leaves:
            parts.append(_char_class(leaves))
        for char in inner:
            parts.append(_char_class([char]) + emit(node[char]))  # type: ignore[arg-type]  # nested trie dicts
        if not parts:
            return ""
        body = parts[0] if len(parts) == 1 else "(" + "|".join(parts) + ")"
        return f"({body})?" if ends_here else body

    return emit(trie)


def billable_codes(codeset: MemoryCodeSet) -> tuple[str, ...]:
    """The billable codes of ``codeset`` (one release), undotted and sorted: what
    `OutputProfile.constraint` builds the code-set grammar from. ~10 ms for ~75,000 codes."""
    return tuple(sorted(record.code for record in codeset.billable()))
