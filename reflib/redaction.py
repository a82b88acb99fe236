"""Personal data in free text, found and replaced by typed placeholders.

Used wherever a transcript leaves the conversation it belongs to: daily reports, statistics
notes, and retention (which scrubs old transcripts in place). It lives in the core because the
chat (retention, self-delete) and analytics (reports) both need it and imports run one way.

What it finds, each replaced by its placeholder:

- ``[email]``: e-mail addresses, also the ``name (at) host (dot) org`` spellings.
- ``[phone]``: North American numbers (``(555) 234-5678``, ``555.234.5678``, ``+1 555 234 5678``,
  seven-digit local ``234-5678``, extensions) and international ones written with a ``+`` or
  ``00`` country code (``+34 912 345 678``, ``0044 20 7946 0958``).
- ``[card]``: library card and item barcodes, the 14-digit Codabar numbers libraries print on
  cards (``21234001234567``, ``2 1234 00123 4567``), any number of 6-16 digits right after a word
  like "card" or "barcode", and the patterns a library configures for its own cards.
- ``[address]``: street addresses written the usual English or Spanish way (``12 Oak Street``,
  ``Calle Mayor 5``); a heuristic, so only where the street type is named.
- ``[name]``: the patron's own name, as given in the pre-chat form or stated in the chat
  ("my name is ...", "me llamo ..."), wherever it then appears, in full or in part.

Deliberately not personal data, and left alone: ISBNs, ISSNs, call numbers (``QA76.73 .P98``),
dates, times, prices, years, room and floor numbers. tests/redaction_corpus.txt holds the
labelled corpus that measures this (``python manage.py redaction_figures``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    ADDRESS = "address"
    NAME = "name"

    @property
    def placeholder(self) -> str:
        return f"[{self.value}]"


Check = Callable[["re.Match[str]"], bool]


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    kind: Kind


# Digits that belong to a longer token (an ISBN's hyphenated groups, a call number, a date)
# must not be read as a phone or card number on their own.
_LEFT = r"(?<![\w./-])"
_RIGHT = r"(?![\w/]|[.-]\d)"

_EMAIL = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    r"|[A-Za-z0-9][A-Za-z0-9._%+-]*\s*[(\[]\s*at\s*[)\]]\s*[A-Za-z0-9-]+"
    r"(?:\s*(?:\.|[(\[]\s*dot\s*[)\]])\s*[A-Za-z0-9-]+)+"
)

_EXTENSION = r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,5})?"
_NANP = re.compile(
    _LEFT
    + r"(?:\+?1[\s.-]?)?(?:\(\s*[2-9]\d{2}\s*\)|[2-9]\d{2})[\s.-]?[2-9]\d{2}[\s.-]?\d{4}"
    + _EXTENSION
    + _RIGHT
)
_NANP_LOCAL = re.compile(_LEFT + r"[2-9]\d{2}[.-]\d{4}" + _EXTENSION + _RIGHT)
# A country code written with + or 00, then 6 to 13 more digits in groups.
_INTERNATIONAL = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[\s.-]?\(?\d{1,5}\)?){2,6}" + _EXTENSION + _RIGHT
)

_CODABAR = re.compile(_LEFT + r"[23][\s-]?\d{4}[\s-]?\d{5}[\s-]?\d{4}" + _RIGHT)
_CARD_CONTEXT = re.compile(
    r"\b(?:library\s+card|card|barcode|patron\s+(?:id|number)|tarjeta|carn[eé]t?)"
    r"(?:\s+(?:number|no\.?|num\.?|#|número|is|es|was|n[º°]))*[\s:#]*"
    r"(?P<number>\d(?:[\s-]?\d){5,15})" + _RIGHT,
    re.IGNORECASE,
)

_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy"
)
_ADDRESS_EN = re.compile(
    _LEFT + r"\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-z]+\.?\s+|\d+(?:st|nd|rd|th)\s+){1,3}"
    r"(?:" + _STREET_TYPES + r")\b\.?"
    r"(?:,?\s*(?:Apt|Apartment|Unit|Suite|#)\.?\s*#?\w+)?"
)
_ADDRESS_ES = re.compile(
    r"\b(?:Calle|C/|Avenida|Avda\.|Av\.|Plaza|Pza\.|Paseo|Camino|Carrer)\s+"
    r"(?:(?:de|del|la|las|los|el)\s+)*[A-ZÁÉÍÓÚÑ][\wáéíóúñ]+(?:\s+[A-ZÁÉÍÓÚÑ][\wáéíóúñ]+)*"
    r",?\s*(?:n[º°o]\.?\s*)?\d{1,4}(?:,?\s*\d{1,2}[º°ª]?\s*[A-Za-z]?)?\b"
)

_DIGIT = re.compile(r"\d")
_BRACKETED_AT = re.compile(r"[(\[]\s*at\s*[)\]]", re.IGNORECASE)

_NAME_PART = r"[A-ZÁÉÍÓÚÑ][a-záéíóúñ'\u2019-]+"
_STATED_NAME = re.compile(
    r"\b(?:my name is|my name's|i am called|me llamo|mi nombre es|this is)\s+"
    rf"(?P<name>{_NAME_PART}(?:\s+{_NAME_PART})?)",
    re.IGNORECASE,
)
# "This is Chemistry 101" is not an introduction: an introduction's name is a name, which these
# words are not.
_NOT_NAMES = frozenset(
    {
        "a",
        "an",
        "the",
        "it",
        "not",
        "for",
        "about",
        "what",
        "library",
        "urgent",
        "chemistry",
        "biology",
        "history",
        "really",
        "my",
        "our",
        "your",
    }
)
_MIN_NAME_PART = 2


def stated_names(texts: Iterable[str]) -> set[str]:
    """Names the patron gives for themselves in ``texts`` ("my name is Ana Ruiz")."""
    found: set[str] = set()
    for text in texts:
        for match in _STATED_NAME.finditer(text):
            parts = match.group("name").split()
            # Case-insensitive matching of the lead-in must not admit lower-case words.
            parts = [p for p in parts if p[0].isupper() and p.lower() not in _NOT_NAMES]
            if parts and parts[0] == match.group("name").split()[0]:
                found.add(" ".join(parts))
    return found


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """Compile a library's card patterns; raises ``re.error`` on a bad one."""
    return [re.compile(pattern) for pattern in patterns if pattern.strip()]


class Redactor:
    """Finds and replaces personal data in texts of one conversation.

    ``names``: the patron's names as known (the form's name and ``stated_names`` of their
    messages); each whole name and each of its parts is redacted wherever it appears.
    ``card_patterns``: the library's own card number patterns (regular expressions).
    """

    def __init__(
        self, *, names: Iterable[str] = (), card_patterns: Sequence[re.Pattern[str]] = ()
    ) -> None:
        parts = {
            part
            for name in names
            for part in re.split(r"[\s,]+", name.strip())
            if len(part) >= _MIN_NAME_PART and part.lower() not in _NOT_NAMES
        }
        words = sorted({*parts, *(n.strip() for n in names if n.strip())}, key=len, reverse=True)
        self._names = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I)
            if words
            else None
        )
        self._card_patterns = list(card_patterns)

    def spans(self, text: str) -> list[Span]:
        """Non-overlapping spans of personal data in ``text``, in order."""
        candidates: list[Span] = []
        # Most chat lines have no "@" and no digit: skip the patterns that need one.
        if "@" in text or _BRACKETED_AT.search(text):
            candidates += _spans(_EMAIL, text, Kind.EMAIL)
        for pattern in self._card_patterns:
            candidates += _spans(pattern, text, Kind.CARD)
        if _DIGIT.search(text):
            candidates += _spans(_CODABAR, text, Kind.CARD)
            for match in _CARD_CONTEXT.finditer(text):
                candidates.append(Span(match.start("number"), match.end("number"), Kind.CARD))
            candidates += _spans(_INTERNATIONAL, text, Kind.PHONE, check=_international(text))
            candidates += _spans(_NANP, text, Kind.PHONE, check=_not_isbn(text))
            candidates += _spans(_NANP_LOCAL, text, Kind.PHONE, check=_not_isbn(text))
            candidates += _spans(_ADDRESS_EN, text, Kind.ADDRESS)
            candidates += _spans(_ADDRESS_ES, text, Kind.ADDRESS)
        if self._names is not None:
            candidates += _spans(self._names, text, Kind.NAME)
        return _first_wins(candidates)

    def redact(self, text: str) -> str:
        pieces: list[str] = []
        cursor = 0
        for span in self.spans(text):
            pieces.append(text[cursor : span.start])
            pieces.append(span.kind.placeholder)
            cursor = span.end
        pieces.append(text[cursor:])
        return "".join(pieces)


def redact(
    text: str, *, names: Iterable[str] = (), card_patterns: Sequence[re.Pattern[str]] = ()
) -> str:
    """One-off redaction of ``text``; build a ``Redactor`` to redact many texts alike."""
    return Redactor(names=names, card_patterns=card_patterns).redact(text)


def _spans(
    pattern: re.Pattern[str],
    text: str,
    kind: Kind,
    check: Check | None = None,
) -> list[Span]:
    spans = []
    for match in pattern.finditer(text):
        if match.end() == match.start():
            continue
        if check is not None and not check(match):
            continue
        spans.append(Span(match.start(), match.end(), kind))
    return spans


_ISSN_SHAPE = re.compile(r"\d{4}-\d{3}[\dXx]")


def _international(text: str) -> Check:
    """7 to 15 digits (E.164), and not an ISSN (``0028-0836``) nor anything after "ISBN"."""
    not_isbn = _not_isbn(text)

    def check(match: re.Match[str]) -> bool:
        digits = sum(c.isdigit() for c in match.group())
        if not 7 <= digits <= 15 or _ISSN_SHAPE.fullmatch(match.group()):
            return False
        return not_isbn(match)

    return check


_ISBN_CONTEXT = re.compile(r"(?:ISBN|ISSN|OCLC)(?:-1[03])?[:\s#]*$", re.IGNORECASE)


def _not_isbn(text: str) -> Check:
    """A bare ten-digit run that is a valid ISBN-10, or any number right after "ISBN", is a
    book, not a telephone."""

    def check(match: re.Match[str]) -> bool:
        if _ISBN_CONTEXT.search(text[max(0, match.start() - 12) : match.start()]):
            return False
        digits = match.group()
        return not (digits.isdigit() and len(digits) == 10 and _isbn10_valid(digits))

    return check


def _isbn10_valid(digits: str) -> bool:
    return sum((10 - i) * int(d) for i, d in enumerate(digits)) % 11 == 0


_PRIORITY = {Kind.EMAIL: 0, Kind.CARD: 1, Kind.PHONE: 2, Kind.ADDRESS: 3, Kind.NAME: 4}


def _first_wins(candidates: list[Span]) -> list[Span]:
    """Resolve overlaps: the longer span wins, then the more specific kind."""
    chosen: list[Span] = []
    for span in sorted(candidates, key=lambda s: (-(s.end - s.start), _PRIORITY[s.kind])):
        if all(span.end <= other.start or span.start >= other.end for other in chosen):
            chosen.append(span)
    return sorted(chosen)
