"""The widget's two pages: the loader script and the chat panel that other sites frame."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from chat.widget import LOADER_MAX_AGE_S, clean_color
from reflib.models import Queue
from reflib.services import library_upsert
from tests.conftest import Cast

DEMO_ORIGIN = "https://www.demo-library.org"
OTHER_ORIGIN = "https://other-library.example"
PANEL = "/widget/demo/general/"

# The cast's passwords are hashed quickly (tests/chat/conftest.py).


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def panel_config(response: Any) -> dict[str, Any]:
    match = re.search(
        r'<script id="reflib-config" type="application/json">(.*?)</script>',
        response.content.decode(),
    )
    assert match is not None
    return dict(json.loads(match.group(1)))


# --- the panel ----------


def test_the_panel_may_be_framed_by_the_librarys_allowed_origins_and_reflib_only(
    client: Client, cast: Cast
) -> None:
    response = client.get(PANEL)

    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert directives(response)["frame-ancestors"] == ["'self'", DEMO_ORIGIN]


def test_the_panel_of_another_library_names_that_librarys_origins(
    client: Client, cast: Cast
) -> None:
    response = client.get("/widget/other/general/")

    assert directives(response)["frame-ancestors"] == ["'self'", OTHER_ORIGIN]


def test_the_panel_keeps_the_sites_strict_policy_and_allows_only_blob_images_more(
    client: Client, cast: Cast
) -> None:
    policy = directives(client.get(PANEL))

    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]


def test_other_pages_still_refuse_to_be_framed(client: Client, cast: Cast) -> None:
    response = client.get("/")

    assert response["X-Frame-Options"] == "DENY"
    assert directives(response)["frame-ancestors"] == ["'none'"]


def test_an_unknown_queue_has_no_panel(client: Client, cast: Cast) -> None:
    assert client.get("/widget/demo/nonesuch/").status_code == 404
    assert client.get("/widget/nonesuch/general/").status_code == 404


def test_an_inactive_queue_has_no_panel(client: Client, cast: Cast) -> None:
    Queue.objects.filter(pk=cast.queue.pk).update(is_active=False)

    assert client.get(PANEL).status_code == 404


def test_the_panel_has_labelled_question_and_message_fields(client: Client, cast: Cast) -> None:
    page = client.get(PANEL).content.decode()

    assert '<label for="question">Question</label>' in page
    assert '<label for="message">Message</label>' in page
    assert '<html lang="en"' in page


def test_the_panel_speaks_spanish_when_the_loader_asks_for_it(client: Client, cast: Cast) -> None:
    response = client.get(PANEL, {"lang": "es"})
    page = response.content.decode()

    assert '<html lang="es"' in page
    assert response["Content-Language"] == "es"
    assert '<label for="question">Pregunta</label>' in page
    assert '<label for="message">Mensaje</label>' in page
    assert panel_config(response)["strings"]["startChat"] == "Empezar el chat"


def test_the_panel_takes_a_regional_variant_as_its_language(client: Client, cast: Cast) -> None:
    page = client.get(PANEL, {"lang": "es-MX"}).content.decode()

    assert '<html lang="es"' in page


def test_the_panel_falls_back_to_the_browsers_language(client: Client, cast: Cast) -> None:
    page = client.get(PANEL, {"lang": "tlh"}, headers={"Accept-Language": "es"}).content.decode()

    assert "Pregunta" in page


def test_the_privacy_note_says_how_long_the_library_keeps_the_chat(
    client: Client, cast: Cast
) -> None:
    cast.library.retention_days = 30
    cast.library.save()

    english = client.get(PANEL).content.decode()
    spanish = client.get(PANEL, {"lang": "es"}).content.decode()

    assert "kept for 30 days, then anonymised" in english
    assert "se guardan 30 días y después se anonimizan" in spanish


@pytest.mark.parametrize("color", ["#abc", "#A1B2C3", "#000000"])
def test_a_valid_colour_themes_the_panel(client: Client, cast: Cast, color: str) -> None:
    page = client.get(PANEL, {"color": color}).content.decode()

    assert f'data-color="{color}"' in page


@pytest.mark.parametrize(
    "color", ["red", "#abcd", "#12345g", "#fff;}body{display:none", "rgb(0,0,0)", ""]
)
def test_anything_but_rgb_or_rrggbb_is_not_a_colour(client: Client, cast: Cast, color: str) -> None:
    page = client.get(PANEL, {"color": color}).content.decode()

    assert clean_color(color) == ""
    assert "data-color" not in page


def test_the_panel_talks_to_an_allowed_embedding_page_only(client: Client, cast: Cast) -> None:
    allowed = panel_config(client.get(PANEL, {"origin": DEMO_ORIGIN}))
    own = panel_config(client.get(PANEL, {"origin": "http://testserver"}))
    foreign = panel_config(client.get(PANEL, {"origin": OTHER_ORIGIN}))
    null = panel_config(client.get(PANEL, {"origin": "null"}))

    assert allowed["parentOrigin"] == DEMO_ORIGIN
    assert own["parentOrigin"] == "http://testserver"
    assert foreign["parentOrigin"] == ""
    assert null["parentOrigin"] == ""


def test_the_panel_knows_its_queue_and_the_protocols_addresses(client: Client, cast: Cast) -> None:
    config = panel_config(client.get(PANEL))

    assert config["queue"] == "demo/general"
    assert config["urls"] == {
        "status": "/api/v1/queues/demo/general/",
        "start": "/api/v1/conversations/",
        "tickets": "/api/v1/tickets/",
        "conversation": "/api/v1/conversations/__ID__/",
        "socket": "/ws/v1/patron/",
    }


def test_a_new_allowed_origin_may_frame_the_panel_at_once(client: Client, cast: Cast) -> None:
    library_upsert(slug="demo", origins=["https://catalogue.demo-library.org"])

    ancestors = directives(client.get(PANEL))["frame-ancestors"]

    assert "https://catalogue.demo-library.org" in ancestors


# --- the loader ----------


def test_the_loader_is_javascript_cached_for_a_few_minutes(client: Client) -> None:
    response = client.get("/widget.js")

    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] == "text/javascript"
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert cache_control == {"public", f"max-age={LOADER_MAX_AGE_S}"}
    assert LOADER_MAX_AGE_S == 300
    assert "Access-Control-Allow-Origin" not in response


def test_the_loader_carries_its_words_in_every_language_and_its_style_sheets_address(
    client: Client,
) -> None:
    script = client.get("/widget.js").content.decode()

    assert "__REFLIB" not in script
    assert '"ask":"Ask a librarian"' in script
    assert '"ask":"Pregunte a un bibliotecario"' in script
    assert '"/static/chat/widget/launcher.css"' in script


def test_the_loader_leaves_its_source_comments_behind(client: Client) -> None:
    script = client.get("/widget.js").content.decode()

    assert not any(line.lstrip().startswith("//") for line in script.splitlines())
    assert "window.reflib" in script


def test_an_unchanged_loader_is_not_sent_again(client: Client) -> None:
    first = client.get("/widget.js")

    again = client.get("/widget.js", headers={"If-None-Match": first["ETag"]})

    assert again.status_code == 304
    assert again.content == b""


def test_the_loader_is_only_read(client: Client) -> None:
    assert client.post("/widget.js").status_code == 405


def test_the_demo_page_embeds_the_widget_with_one_script_tag(client: Client, cast: Cast) -> None:
    page = client.get("/").content.decode()

    assert '<script src="/widget.js" data-queue="demo/general" async></script>' in page
