"""Staff log in with Django accounts; the desk is for librarians of at least one library."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import PASSWORD, Cast


def test_desk_sends_anonymous_visitors_to_the_login_page(db: None) -> None:
    response = Client().get("/desk/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/desk/"


def test_desk_refuses_an_account_without_any_library(cast: Cast) -> None:
    outsider = User.objects.create_user("olga", password=PASSWORD)
    client = Client()
    client.force_login(outsider)

    assert client.get("/desk/").status_code == 403


def test_desk_opens_for_a_librarian(cast: Cast) -> None:
    response = cast.client_for(cast.librarian).get("/desk/")

    assert response.status_code == 200
    assert b"demo/general" in response.content
    assert b"other/general" not in response.content


def test_login_page_is_a_crispy_form_with_username_and_password(db: None) -> None:
    response = Client().get("/accounts/login/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<form method="post"' in html
    assert 'name="username"' in html
    assert 'name="password"' in html
    # crispy-bootstrap5 wraps each field in a div with this id; a bare {{ form }} does not.
    assert 'id="div_id_username"' in html
    assert "form-control" in html


def test_logging_in_with_the_right_password_leads_to_the_desk(cast: Cast) -> None:
    client = Client()

    response = client.post("/accounts/login/", {"username": "lena", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/desk/"
    assert client.get("/desk/").status_code == 200


def test_logging_in_with_a_wrong_password_shows_the_form_again(cast: Cast) -> None:
    client = Client()

    response = client.post("/accounts/login/", {"username": "lena", "password": "wrong"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_logging_out_by_post_ends_the_session(cast: Cast) -> None:
    client = cast.client_for(cast.librarian)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/desk/").status_code == 302


def test_password_change_page_requires_login(db: None) -> None:
    response = Client().get("/accounts/password_change/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/password_change/"


def test_password_change_page_opens_for_a_logged_in_librarian(cast: Cast) -> None:
    response = cast.client_for(cast.librarian).get("/accounts/password_change/")

    assert response.status_code == 200
    assert 'name="old_password"' in response.content.decode()


def test_a_copied_session_cookie_stops_working_at_logout(cast: Cast) -> None:
    # A stolen cookie: logging out ends the session on the server, not only in this browser.
    client = cast.client_for(cast.librarian)
    copy = Client()
    copy.cookies["sessionid"] = client.cookies["sessionid"].value
    assert copy.get("/desk/").status_code == 200

    client.post("/accounts/logout/")

    assert copy.get("/desk/").status_code == 302


def test_a_password_change_logs_out_the_accounts_other_sessions(cast: Cast) -> None:
    client = Client()
    client.post("/accounts/login/", {"username": cast.librarian.username, "password": PASSWORD})
    elsewhere = Client()
    elsewhere.post("/accounts/login/", {"username": cast.librarian.username, "password": PASSWORD})
    assert elsewhere.get("/desk/").status_code == 200

    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "n3w-Passw0rd!x",
            "new_password2": "n3w-Passw0rd!x",
        },
    )

    assert response.status_code == 302
    assert client.get("/desk/").status_code == 200
    assert elsewhere.get("/desk/").status_code == 302
