"""The BIF text format (Bayesian Interchange Format 0.15) for discrete Bayesian networks.

    network asia { }
    variable smoke { type discrete [ 2 ] { yes, no }; }
    probability ( smoke ) { table 0.5, 0.5; }
    probability ( lung | smoke ) { (yes) 0.1, 0.9; (no) 0.01, 0.99; }

A conditional block lists one row per parent configuration, `(parent states) p_1, ..., p_k;`,
or `default p_1, ..., p_k;` for the rows not listed, or one `table` of all values with the
variable's state varying slowest and the last parent fastest (as pgmpy reads it). Comments
(// and /* */) and `property ...;` statements are skipped. The reader is defensive: every
problem is a `BIFError` (a ValueError) that starts with `source:line:`.
"""

from __future__ import annotations

import re
from itertools import product

import numpy as np

from ..exceptions import InvalidParameterError, UserError
from ._graph import Structure

_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<comment>//[^\n]*|/\*.*?\*/) | (?P<punct>[{}()\[\]|,;])
    | (?P<string>"[^"\n]*") | (?P<word>[^\s{}()\[\]|,;"]+)
""", re.VERBOSE | re.DOTALL)
_NAME = re.compile(r"^[^\s{}()\[\]|,;\"/]+$")


class BIFError(UserError, ValueError):
    """A malformed BIF file; the message starts with `source:line:`."""


class _Tokens:
    """The token stream of a BIF text, each token with its line number."""

    def __init__(self, text: str, source: str):
        self.source, self.items, self.at = source, [], 0
        line, pos = 1, 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                self.fail(f"unexpected character {text[pos]!r}", line)
            kind = match.lastgroup
            if kind in ("punct", "word", "string"):
                self.items.append((match.group(), line))
            line += match.group().count("\n")
            pos = match.end()
        self.end_line = line

    def fail(self, message: str, line: int | None = None):
        line = self.line if line is None else line
        raise BIFError(f"{self.source}:{line}: {message}")

    @property
    def line(self) -> int:
        return self.items[self.at][1] if self.at < len(self.items) else self.end_line

    def peek(self) -> str | None:
        return self.items[self.at][0] if self.at < len(self.items) else None

    def next(self, what: str) -> str:
        token = self.peek()
        if token is None:
            self.fail(f"expected {what}, got the end of the file")
        self.at += 1
        return token

    def expect(self, literal: str) -> None:
        token = self.next(repr(literal))
        if token != literal:
            self.at -= 1
            self.fail(f"expected {literal!r}, got {token!r}")

    def name(self, what: str) -> str:
        token = self.next(what)
        if not _NAME.match(token):
            self.at -= 1
            self.fail(f"expected {what}, got {token!r}")
        return token

    def skip_statement(self) -> None:
        """Skip to the end of a `property ...;` statement."""
        while self.next("';' ending the property") != ";":
            pass

    def numbers(self) -> list[float]:
        """Numbers separated by commas or spaces, up to and including ';'."""
        values = []
        while True:
            token = self.next("a probability or ';'")
            if token == ";":
                return values
            if token == ",":
                continue
            try:
                values.append(float(token))
            except ValueError:
                self.at -= 1
                self.fail(f"expected a probability, got {token!r}")


def _variable(tokens: _Tokens, variables: dict) -> None:
    line = tokens.line
    name = tokens.name("a variable name")
    if name in variables:
        tokens.fail(f"variable {name!r} is declared twice", line)
    tokens.expect("{")
    states = None
    while (token := tokens.next("'type', 'property' or '}'")) != "}":
        if token == "property":
            tokens.skip_statement()
        elif token == "type":
            kind = tokens.next("'discrete'")
            if kind != "discrete":
                tokens.fail(f"only discrete variables are supported; {name!r} is {kind!r}")
            tokens.expect("[")
            count = tokens.next("the number of states")
            if not count.isdigit() or int(count) < 1:
                tokens.fail(f"expected a positive number of states, got {count!r}")
            tokens.expect("]")
            tokens.expect("{")
            states = []
            while (state := tokens.next("a state name or '}'")) != "}":
                if state != ",":
                    if not _NAME.match(state):
                        tokens.fail(f"expected a state name, got {state!r}")
                    states.append(state)
            tokens.expect(";")
            if len(states) != int(count) or len(set(states)) != len(states):
                tokens.fail(f"variable {name!r} declares [ {count} ] states but lists "
                            f"{len(states)} distinct names {states}", line)
        else:
            tokens.at -= 1
            tokens.fail(f"expected 'type', 'property' or '}}' in variable {name!r}, got "
                        f"{token!r}")
    if states is None:
        tokens.fail(f"variable {name!r} has no 'type discrete [ k ] {{ ... }};' line", line)
    variables[name] = (states, line)


def _probability_names(tokens: _Tokens, variables: dict, line: int) -> list[str]:
    """The names of `probability ( child | parent, ... )`: the child first."""
    tokens.expect("(")
    names = []
    while (token := tokens.next("a variable name or ')'")) != ")":
        if token not in ("|", ","):
            tokens.at -= 1
            names.append(tokens.name("a variable name"))
    if not names:
        tokens.fail("empty probability ( ) block", line)
    for name in names:
        if name not in variables:
            tokens.fail(f"probability block names {name!r}, which has no 'variable' block "
                        "before it", line)
    return names


def _conditional_row(tokens: _Tokens, child: str, given: list, parent_states: list,
                     k: int, row_line: int) -> tuple[tuple[int, ...], list]:
    """`(state, ...) p_1, ..., p_k;` after its '(': (parent state indices, the k values)."""
    index = []
    for i, states in enumerate(parent_states):
        if i and tokens.peek() == ",":
            tokens.at += 1
        state = tokens.name(f"a state of {given[i]!r}")
        if state not in states:
            tokens.fail(f"{state!r} is not a state of {given[i]!r} ({states})")
        index.append(states.index(state))
    tokens.expect(")")
    values = tokens.numbers()
    if len(values) != k:
        tokens.fail(f"the row of {child!r} needs {k} values, got {len(values)}", row_line)
    return tuple(index), values


def _probability(tokens: _Tokens, variables: dict, tables: dict, parents: dict) -> None:
    line = tokens.line
    names = _probability_names(tokens, variables, line)
    child, given = names[0], names[1:]
    if child in tables:
        tokens.fail(f"a second probability block for {child!r}", line)
    k = len(variables[child][0])
    parent_states = [variables[p][0] for p in given]
    shape = tuple(len(s) for s in parent_states) + (k,)
    table = np.full(shape, np.nan)
    default = None
    tokens.expect("{")
    while (token := tokens.next("a table row or '}'")) != "}":
        row_line = tokens.line
        if token == "property":
            tokens.skip_statement()
        elif token in ("table", "default"):
            values = tokens.numbers()
            expected = int(np.prod(shape)) if token == "table" else k
            if len(values) != expected:
                tokens.fail(f"{token} of {child!r} needs {expected} values, got "
                            f"{len(values)}", row_line)
            if token == "table":  # child state slowest, last parent fastest
                table = np.moveaxis(np.reshape(values, (k,) + shape[:-1]), 0, -1)
            else:
                default = values
        elif token == "(":
            index, values = _conditional_row(tokens, child, given, parent_states, k, row_line)
            table[index] = values
        else:
            tokens.at -= 1
            tokens.fail(f"expected 'table', 'default', '(' or '}}', got {token!r}")
    if default is not None:
        table[np.isnan(table).all(axis=-1)] = default
    if np.isnan(table).any():
        missing = tuple(int(i) for i in np.argwhere(np.isnan(table))[0][:-1])
        config = ", ".join(f"{p}={parent_states[i][s]}" for i, (p, s) in
                           enumerate(zip(given, missing)))
        tokens.fail(f"the CPT of {child!r} has no row for ({config})", line)
    tables[child] = (table, line)
    parents[child] = given


def read_bif(text: str, source: str = "<bif>") -> dict:
    """Parse BIF text -> constructor arguments of DiscreteBayesNet: edges, cardinalities,
    cpts, state_names. Raises BIFError('source:line: problem')."""
    tokens = _Tokens(text, source)
    variables, tables, parents = {}, {}, {}
    while (token := tokens.peek()) is not None:
        tokens.at += 1
        if token == "network":
            while tokens.peek() not in ("{", None):
                tokens.at += 1
            tokens.expect("{")
            depth = 1
            while depth:
                inner = tokens.next("'}' closing the network block")
                depth += {"{": 1, "}": -1}.get(inner, 0)
        elif token == "variable":
            _variable(tokens, variables)
        elif token == "probability":
            _probability(tokens, variables, tables, parents)
        else:
            tokens.at -= 1
            tokens.fail(f"expected 'network', 'variable' or 'probability', got {token!r}")
    if not variables:
        raise BIFError(f"{source}:1: no variables declared")
    for name, (_, line) in variables.items():
        if name not in tables:
            raise BIFError(f"{source}:{line}: variable {name!r} has no probability block")
    spec = {
        "edges": [(p, child) for child in variables for p in parents[child]],
        "cardinalities": {name: len(states) for name, (states, _) in variables.items()},
        "cpts": {name: tables[name][0] for name in variables},
        "state_names": {name: list(states) for name, (states, _) in variables.items()},
    }
    _check(spec, tables, source)
    return spec


def _check(spec: dict, tables: dict, source: str) -> None:
    """Structure and CPT validation, with the line of the offending block."""
    from ._graph import build_structure
    from .network import check_cpts

    try:
        structure = build_structure(spec["edges"], spec["cardinalities"], spec["state_names"])
    except ValueError as error:
        raise BIFError(f"{source}: {error}") from None
    for name, (table, line) in tables.items():
        try:
            check_cpts(structure, {name: table})
        except ValueError as error:
            raise BIFError(f"{source}:{line}: {error}") from None


def write_bif(structure: Structure, cpts, name: str = "latentkit") -> str:
    """BIF text of a network: one `variable` block per variable, then one `probability`
    block each (a `table` for a root, one row per parent configuration otherwise). Floats
    are written with repr, so reading back gives the same CPTs bit for bit."""
    for label in (name, *structure.names, *(s for states in structure.states for s in states)):
        if not _NAME.match(label):
            raise InvalidParameterError(
                f"{label!r} cannot be written to BIF: names must not contain spaces or any "
                "of {}()[]|,;\"/.")
    lines = [f"network {name} {{", "}"]
    for v, var in enumerate(structure.names):
        lines += [f"variable {var} {{",
                  f"  type discrete [ {structure.cards[v]} ] {{ "
                  f"{', '.join(structure.states[v])} }};", "}"]
    for v, var in enumerate(structure.names):
        table = np.asarray(cpts[v], dtype=np.float64)
        given = [structure.names[p] for p in structure.parents[v]]
        if not given:
            lines += [f"probability ( {var} ) {{",
                      f"  table {', '.join(repr(float(x)) for x in table)};", "}"]
            continue
        lines.append(f"probability ( {var} | {', '.join(given)} ) {{")
        for index in product(*(range(structure.cards[p]) for p in structure.parents[v])):
            states = ", ".join(structure.states[p][i]
                               for p, i in zip(structure.parents[v], index))
            values = ", ".join(repr(float(x)) for x in table[index])
            lines.append(f"  ({states}) {values};")
        lines.append("}")
    return "\n".join(lines) + "\n"
