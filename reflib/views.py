"""Site-wide pages: the demo home page and the bundled documentation."""

from __future__ import annotations

import markdown
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from reflib.models import Queue


def home(request: HttpRequest) -> HttpResponse:
    """A mock library web page that embeds the chat widget, with links for staff."""
    queue = Queue.objects.select_related("library").filter(is_active=True).first()
    return render(request, "home.html", {"queue": queue})


DOCS_DIR = settings.BASE_DIR / "docs"


def docs_index(request: HttpRequest) -> HttpResponse:
    pages = sorted(path.stem for path in DOCS_DIR.glob("*.md"))
    return render(request, "docs_index.html", {"pages": pages})


def docs_page(request: HttpRequest, name: str) -> HttpResponse:
    # The URL pattern admits only [a-z-]; the file must be one of docs/*.md.
    path = DOCS_DIR / f"{name}.md"
    if not path.is_file():
        raise Http404("No such document")
    body = markdown.markdown(path.read_text(encoding="utf-8"), extensions=["tables", "fenced_code"])
    return render(request, "docs_page.html", {"name": name, "body": mark_safe(body)})  # noqa: S308
