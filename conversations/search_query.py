"""The search box's query language: parsed once, rendered for SQLite FTS5 and PostgreSQL.

Sans-IO. The grammar (``parse``), in the spirit of RFC 5234 ABNF::

    query   = or-expr
    or-expr = and-expr *( "OR" and-expr )
    and-expr= unary *( [ "AND" ] unary )          ; side by side means AND
    unary   = ( "NOT" / "-" ) unary / primary      ; "-word" only at a word's start
    primary = "(" or-expr ")" / DQUOTE phrase DQUOTE [ "*" ] / word [ "*" ]

``OR``, ``AND`` and ``NOT`` are operators only in capitals; ``or`` is a word.
``refund*`` matches words starting with ``refund``; ``"chest pain"`` the two
words in a row. Text is cut into words exactly as the index cuts it
(``tokens``: letters and digits, lower case, accents removed), so
``e-mail`` in a query is the phrase ``"e mail"``, as it is in the index.

Every word reaches the database quoted (``to_fts5``: ``"word"``;
``to_tsquery``: ``'word'``), so user text can never be read as FTS5 or
tsquery syntax. A query must find something by itself: ``-cancel`` alone, or
``refund OR -cancel``, is refused (``InvalidValue``) rather than meaning
"everything but".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from conversations.errors import InvalidValue

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "And",
    "Node",
    "Not",
    "Or",
    "Term",
    "parse",
    "positive_terms",
    "to_fts5",
    "to_tsquery",
    "tokens",
]

MAX_QUERY_CHARS = 1000
MAX_TERMS = 32  # words and phrases in one query: each costs a doclist walk
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script, like FTS5's unicode61
_OPERATORS = frozenset({"OR", "AND", "NOT"})
_STOP = frozenset('()"')


def tokens(text: str) -> list[str]:
    """The words of ``text`` as the search index holds them.

    Compatibility-normalised (NFKC: full-width letters, ligatures), lower case,
    accents removed (NFKD without combining marks), cut at anything that is
    not a letter or a digit.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = unicodedata.normalize(
            "NFC", "".join(char for char in decomposed if not unicodedata.combining(char))
        )
    return _WORD.findall(text)


# ---------------------------------------------------------------- the tree


@dataclass(frozen=True, slots=True)
class Term:
    """Words that must appear in a row (one word, or a phrase); ``prefix``: the last may go on."""

    words: tuple[str, ...]
    prefix: bool = False

    def matches_at(self, words: Sequence[str], index: int) -> bool:
        """Whether this term matches ``words`` (normalised, as ``tokens`` gives) at ``index``."""
        count = len(self.words)
        if index + count > len(words):
            return False
        for offset, word in enumerate(self.words):
            found = words[index + offset]
            if offset == count - 1 and self.prefix:
                if not found.startswith(word):
                    return False
            elif found != word:
                return False
        return True


@dataclass(frozen=True, slots=True)
class And:
    """Every child must match; ``Not`` children must not."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child must match."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The child must not match (only ever a child of ``And`` once parsed)."""

    child: Node


Node: TypeAlias = "Term | And | Or | Not"


# ---------------------------------------------------------------- lexing


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # "(", ")", "OR", "AND", "NOT", "-", "term"
    position: int  # 1-based column, for messages
    term: Term | None = None
    text: str = ""


def _lex(query: str) -> list[_Lexeme]:
    lexemes: list[_Lexeme] = []
    index = 0
    while index < len(query):
        char = query[index]
        if char.isspace():
            index += 1
        elif char in "()":
            lexemes.append(_Lexeme(char, index + 1))
            index += 1
        elif char == '"':
            end = query.find('"', index + 1)
            if end < 0:
                raise InvalidValue(
                    f'unclosed quote at column {index + 1}: end the phrase with another "'
                )
            prefix = query.startswith("*", end + 1)
            words = tuple(tokens(query[index + 1 : end]))
            text = query[index : end + 1 + prefix]
            lexemes.append(_Lexeme("term", index + 1, Term(words, prefix), text))
            index = end + 1 + prefix
        elif char == "-" and index + 1 < len(query) and not query[index + 1].isspace():
            lexemes.append(_Lexeme("-", index + 1))
            index += 1
        else:
            end = index
            while end < len(query) and not query[end].isspace() and query[end] not in _STOP:
                end += 1
            lexemes.append(_word(query[index:end], index + 1))
            index = end
    return lexemes


def _word(text: str, position: int) -> _Lexeme:
    if text in _OPERATORS:
        return _Lexeme(text, position, text=text)
    prefix = text.endswith("*")
    body = text[:-1] if prefix else text
    if "*" in body or (prefix and not tokens(body)):
        raise InvalidValue(f"{text!r} at column {position}: '*' only ends a word, as in refund*")
    return _Lexeme("term", position, Term(tuple(tokens(body)), prefix), text)


# ---------------------------------------------------------------- parsing


class _Parser:
    """Recursive descent over the lexemes; methods return None for punctuation-only input."""

    def __init__(self, lexemes: list[_Lexeme]) -> None:
        self.lexemes = lexemes
        self.index = 0

    def peek(self) -> _Lexeme | None:
        return self.lexemes[self.index] if self.index < len(self.lexemes) else None

    def take(self) -> _Lexeme:
        lexeme = self.lexemes[self.index]
        self.index += 1
        return lexeme

    def or_expr(self) -> Node | None:
        children = [self.and_expr()]
        while (lexeme := self.peek()) is not None and lexeme.kind == "OR":
            self.take()
            children.append(self.and_expr())
        if len(children) > 1 and any(child is None for child in children):
            raise InvalidValue("OR needs something to find on each side, as in refund OR return")
        return _joined(Or, children)

    def and_expr(self) -> Node | None:
        children: list[Node | None] = []
        while (lexeme := self.peek()) is not None and lexeme.kind not in (")", "OR"):
            if lexeme.kind == "AND":
                self.take()
                following = self.peek()
                if not children or following is None or following.kind in (")", "OR", "AND"):
                    raise InvalidValue(f"AND at column {lexeme.position} needs a word on each side")
                continue
            children.append(self.unary())
        return _joined(And, children)

    def unary(self) -> Node | None:
        lexeme = self.take()
        if lexeme.kind in ("NOT", "-"):
            following = self.peek()
            if following is None or following.kind in (")", "OR", "AND"):
                raise InvalidValue(
                    f"{lexeme.text or '-'} at column {lexeme.position} needs a word after it"
                )
            child = self.unary()
            if child is None:
                return None
            return child.child if isinstance(child, Not) else Not(child)
        if lexeme.kind == "(":
            if (inner := self.peek()) is not None and inner.kind == ")":
                raise InvalidValue(f"empty parentheses at column {lexeme.position}")
            group = self.or_expr()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise InvalidValue(f"the ( at column {lexeme.position} has no matching )")
            self.take()
            return group
        if lexeme.kind == "term":
            assert lexeme.term is not None
            return lexeme.term if lexeme.term.words else None
        raise InvalidValue(f"unexpected {lexeme.kind} at column {lexeme.position}")


def _joined(kind: type[And] | type[Or], children: Sequence[Node | None]) -> Node | None:
    """One node for the children: flattened, punctuation-only ones dropped."""
    flat: list[Node] = []
    for child in children:
        if child is None:
            continue
        flat.extend(child.children if isinstance(child, kind) else (child,))
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


def parse(query: str) -> Node:
    """The query's tree; see the module docstring for the language.

    Raises:
        InvalidValue: a syntax error, a query of nothing but punctuation, one
            that only excludes, or one over ``MAX_QUERY_CHARS``/``MAX_TERMS``.
    """
    if not isinstance(query, str):
        raise InvalidValue(f"the query must be a string, not {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidValue(f"the query is longer than {MAX_QUERY_CHARS} characters")
    parser = _Parser(_lex(query))
    node = parser.or_expr()
    if (extra := parser.peek()) is not None:
        raise InvalidValue(f"unexpected {extra.kind} at column {extra.position}")
    if node is None:
        raise InvalidValue("the query has no words to search for")
    _check_findable(node)
    count = _count_terms(node)
    if count > MAX_TERMS:
        raise InvalidValue(f"the query has {count} words and phrases; {MAX_TERMS} at most")
    return node


def _check_findable(node: Node) -> None:
    """Refuse what can only exclude: a database can match words, not their absence."""
    if isinstance(node, Not):
        raise InvalidValue(
            "a query of only excluded words finds nothing: add a word to find, as in refund -cancel"
        )
    if isinstance(node, Or):
        for child in node.children:
            if isinstance(child, Not):
                raise InvalidValue("OR cannot join an excluded word, as in refund OR -cancel")
            _check_findable(child)
    elif isinstance(node, And):
        wanted = [child for child in node.children if not isinstance(child, Not)]
        if not wanted:
            _check_findable(node.children[0])  # raises: only exclusions
        for child in node.children:
            # What is excluded must be findable itself: -(card -gift) is, -(-card) is not.
            _check_findable(child.child if isinstance(child, Not) else child)


def _count_terms(node: Node) -> int:
    if isinstance(node, Term):
        return 1
    if isinstance(node, Not):
        return _count_terms(node.child)
    return sum(_count_terms(child) for child in node.children)


def positive_terms(node: Node) -> tuple[Term, ...]:
    """The terms a match contains (those not excluded), in query order, for highlighting."""
    if isinstance(node, Term):
        return (node,)
    if isinstance(node, Not):
        return ()
    found: list[Term] = []
    for child in node.children:
        found.extend(positive_terms(child))
    return tuple(dict.fromkeys(found))


# ---------------------------------------------------------------- rendering


def to_fts5(node: Node) -> str:
    """The query as an SQLite FTS5 MATCH expression; every term is a quoted string.

    FTS5's NOT is binary ("a NOT b"), so an AND's exclusions follow its wanted part.
    """
    if isinstance(node, Term):
        quoted = '"' + " ".join(node.words).replace('"', '""') + '"'
        return quoted + ("*" if node.prefix else "")
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(child) for child in node.children) + ")"
    if isinstance(node, Not):  # only reachable inside an excluded group
        raise InvalidValue("an excluded word needs a word to find beside it")
    wanted = [to_fts5(child) for child in node.children if not isinstance(child, Not)]
    excluded = [to_fts5(child.child) for child in node.children if isinstance(child, Not)]
    text = "(" + " AND ".join(wanted) + ")"
    if excluded:
        text = "(" + text + " NOT (" + " OR ".join(excluded) + "))"
    return text


def to_tsquery(node: Node) -> str:
    """The query as PostgreSQL ``to_tsquery('simple', ...)`` text; lexemes are quoted.

    A phrase is ``'a' <-> 'b'``, a prefix ``'ref':*``, NOT ``!``.
    """
    if isinstance(node, Term):
        lexemes = ["'" + word.replace("\\", "\\\\").replace("'", "''") + "'" for word in node.words]
        if node.prefix:
            lexemes[-1] += ":*"
        return lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")"
    if isinstance(node, Not):
        return "!" + to_tsquery(node.child)
    joiner = " | " if isinstance(node, Or) else " & "
    return "(" + joiner.join(to_tsquery(child) for child in node.children) + ")"
