"""Site-wide pages: the demo home page, the bundled documentation, security headers."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import Cast


def test_home_page_without_a_library_says_how_to_seed_one(db: None) -> None:
    response = Client().get("/")

    assert response.status_code == 200
    assert b"No library is set up yet" in response.content


def test_home_page_shows_the_embedding_snippet_of_the_first_queue(cast: Cast) -> None:
    response = Client().get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 class="h2 mb-0">Demo Public Library</h1>' in html
    assert (
        '&lt;script src="http://testserver/widget.js" data-queue="demo/general" async&gt;'
        "&lt;/script&gt;"
    ) in html
    assert "other/general" not in html


def test_home_page_skips_an_inactive_queue(cast: Cast) -> None:
    cast.queue.is_active = False
    cast.queue.save()

    html = Client().get("/").content.decode()

    assert 'data-queue="other/general"' in html


def test_docs_index_lists_every_document(db: None) -> None:
    response = Client().get("/docs/")

    assert response.status_code == 200
    names = sorted(path.stem for path in (settings.BASE_DIR / "docs").glob("*.md"))
    assert {"architecture", "configuration", "deployment", "operations"} <= set(names)
    for name in names:
        assert f'href="/docs/{name}/"'.encode() in response.content


def test_architecture_document_renders_as_html(db: None) -> None:
    response = Client().get("/docs/architecture/")

    assert response.status_code == 200
    assert b"<h1>" in response.content
    assert b"transaction.on_commit" in response.content


def test_unknown_document_is_not_found(db: None) -> None:
    assert Client().get("/docs/no-such-document/").status_code == 404


# README.md exists one folder up, so a view that joined the name to the folder naively would
# serve it for the ..%2FREADME forms.
@pytest.mark.parametrize(
    "path",
    ["/docs/..%2Fsettings/", "/docs/..%2FREADME/", "/docs/%2e%2e%2fREADME/", "/docs/../README/"],
)
def test_docs_do_not_serve_files_outside_the_docs_folder(db: None, path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 404
    assert b"make run" not in response.content


def test_responses_carry_the_security_headers(db: None) -> None:
    response = Client().get("/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
