"""Recall and precision of ``reflib.redaction`` on the labelled corpus in data/.

A gold span counts as found when a redacted span of the same kind overlaps it; a redacted span
counts as right when it overlaps a gold span of the same kind. Run
``python manage.py redaction_figures`` to print the table (docs/operations.md quotes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from reflib.redaction import Kind, Redactor, Span, stated_names

CORPUS = Path(__file__).resolve().parent / "data" / "redaction_corpus.txt"
_LABEL = re.compile(r"\{(email|phone|card|address|name):([^{}]+)\}")


@dataclass(frozen=True)
class Line:
    text: str
    gold: tuple[Span, ...]


@dataclass
class Conversation:
    form_name: str
    lines: list[Line] = field(default_factory=list)


@dataclass
class Figures:
    gold: int = 0
    predicted: int = 0
    found: int = 0
    right: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        return self.right / self.predicted if self.predicted else 1.0


def parse_line(marked: str) -> Line:
    """``"call {phone:555-0100}"`` → the plain text and its gold spans."""
    text: list[str] = []
    gold: list[Span] = []
    cursor = 0
    length = 0
    for match in _LABEL.finditer(marked):
        before = marked[cursor : match.start()]
        text.append(before)
        length += len(before)
        value = match.group(2)
        gold.append(Span(length, length + len(value), Kind(match.group(1))))
        text.append(value)
        length += len(value)
        cursor = match.end()
    text.append(marked[cursor:])
    return Line(text="".join(text), gold=tuple(gold))


def load(path: Path = CORPUS) -> list[Conversation]:
    conversations: list[Conversation] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("## patron:"):
            conversations.append(Conversation(form_name=raw.removeprefix("## patron:").strip()))
        elif raw.strip() and not raw.startswith("#"):
            if not conversations:
                raise ValueError("the corpus must start with a '## patron:' line")
            conversations[-1].lines.append(parse_line(raw))
    return conversations


def _overlaps(a: Span, b: Span) -> bool:
    return a.kind == b.kind and a.start < b.end and b.start < a.end


def redactor_for(conversation: Conversation) -> Redactor:
    """As retention builds one: the form's name and the names stated in the chat."""
    names = stated_names(line.text for line in conversation.lines)
    if conversation.form_name:
        names.add(conversation.form_name)
    return Redactor(names=names)


def evaluate(conversations: list[Conversation]) -> dict[Kind, Figures]:
    figures = {kind: Figures() for kind in Kind}
    for conversation in conversations:
        redactor = redactor_for(conversation)
        for line in conversation.lines:
            predicted = redactor.spans(line.text)
            for kind in Kind:
                gold_k = [s for s in line.gold if s.kind == kind]
                pred_k = [s for s in predicted if s.kind == kind]
                f = figures[kind]
                f.gold += len(gold_k)
                f.predicted += len(pred_k)
                f.found += sum(any(_overlaps(g, p) for p in pred_k) for g in gold_k)
                f.right += sum(any(_overlaps(p, g) for g in gold_k) for p in pred_k)
    return figures


def misses(conversations: list[Conversation]) -> list[str]:
    """Lines where the redaction differs from the labels, to see what went wrong."""
    out = []
    for conversation in conversations:
        redactor = redactor_for(conversation)
        for line in conversation.lines:
            got = {(s.start, s.end, s.kind) for s in redactor.spans(line.text)}
            want = {(s.start, s.end, s.kind) for s in line.gold}
            if got != want:
                out.append(f"{redactor.redact(line.text)}    <- {line.text}")
    return out
