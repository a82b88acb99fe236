"""Tenancy: staff of one library never see another library's rows, in the admin or in queries."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.http.response import HttpResponseBase
from django.test import Client
from django.urls import reverse

from reflib.models import Library, Queue, Role
from reflib.services import staff_upsert
from tests.conftest import Cast


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.org", "not-used-here")


def _hides_object(response: HttpResponseBase) -> bool:
    """True when the admin refuses an object: 403, 404, or Django's "does not exist" redirect."""
    if response.status_code in {403, 404}:
        return True
    return response.status_code == 302 and response["Location"] == reverse("admin:index")


def _queue_add_data(client: Client, **values: object) -> dict[str, object]:
    """The queue add form as the admin offers it, with its defaults, filled in with ``values``."""
    form = client.get(reverse("admin:reflib_queue_add")).context["adminform"].form
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        initial = form.get_initial_for_field(field, name)
        if initial is True:
            data[name] = "on"
        elif initial not in (None, False, "", []):
            data[name] = initial
    return {**data, **values}


def test_manager_sees_own_queues_and_not_the_other_librarys_in_the_changelist(cast: Cast) -> None:
    response = cast.client_for(cast.manager).get(reverse("admin:reflib_queue_changelist"))

    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown == [cast.queue]
    assert b"demo/general" in response.content
    assert b"other/general" not in response.content


@pytest.mark.parametrize("model", ["queue", "servicepoint", "membership"])
def test_managers_library_filter_in_the_changelist_does_not_name_other_libraries(
    cast: Cast, model: str
) -> None:
    response = cast.client_for(cast.manager).get(reverse(f"admin:reflib_{model}_changelist"))

    assert response.status_code == 200
    assert cast.other_library.name.encode() not in response.content


@pytest.mark.parametrize(
    "url_name", ["admin:reflib_queue_change", "admin:reflib_queue_delete"], ids=["change", "delete"]
)
def test_manager_cannot_open_another_librarys_queue(cast: Cast, url_name: str) -> None:
    client = cast.client_for(cast.manager)

    response = client.get(reverse(url_name, args=[cast.other_queue.pk]))

    assert _hides_object(response)
    assert Queue.objects.filter(pk=cast.other_queue.pk).exists()


def test_manager_can_open_own_queue_change_page(cast: Cast) -> None:
    response = cast.client_for(cast.manager).get(
        reverse("admin:reflib_queue_change", args=[cast.queue.pk])
    )

    assert response.status_code == 200


def test_manager_cannot_open_another_librarys_change_page(cast: Cast) -> None:
    client = cast.client_for(cast.manager)

    response = client.get(reverse("admin:reflib_library_change", args=[cast.other_library.pk]))

    assert _hides_object(response)
    followed = client.get(reverse("admin:index"))
    assert cast.other_library.name.encode() not in followed.content


def test_manager_cannot_add_a_queue_to_another_library(cast: Cast) -> None:
    client = cast.client_for(cast.manager)

    data = _queue_add_data(client, library=cast.other_library.pk, slug="smuggled", name="S")

    response = client.post(reverse("admin:reflib_queue_add"), data)

    assert response.status_code == 200
    assert "library" in response.context["adminform"].form.errors
    assert not Queue.objects.filter(slug="smuggled").exists()


def test_manager_can_add_a_queue_to_own_library(cast: Cast) -> None:
    client = cast.client_for(cast.manager)

    data = _queue_add_data(client, library=cast.library.pk, slug="law", name="Law")

    response = client.post(reverse("admin:reflib_queue_add"), data)

    assert response.status_code == 302
    assert Queue.objects.get(library=cast.library, slug="law").name == "Law"


def test_queue_add_form_offers_only_the_managers_libraries(cast: Cast) -> None:
    response = cast.client_for(cast.manager).get(reverse("admin:reflib_queue_add"))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.fields["library"].queryset) == [cast.library]
    # Rollover partners may be any library's queue (SPEC §1.7): queue addresses are public.
    assert set(form.fields["partners"].queryset) == {cast.queue, cast.other_queue}


def test_membership_form_offers_only_the_managers_staff(cast: Cast) -> None:
    response = cast.client_for(cast.manager).get(reverse("admin:reflib_membership_add"))

    assert response.status_code == 200
    users = response.context["adminform"].form.fields["user"].queryset
    assert set(users) == {cast.librarian, cast.manager}


def test_librarian_who_is_not_a_manager_is_sent_to_the_admin_login(cast: Cast) -> None:
    response = cast.client_for(cast.librarian).get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_superuser_sees_queues_of_every_library(cast: Cast, superuser: User) -> None:
    client = Client()
    client.force_login(superuser)

    response = client.get(reverse("admin:reflib_queue_changelist"))

    assert response.status_code == 200
    assert set(response.context["cl"].result_list) == {cast.queue, cast.other_queue}


def test_superuser_sees_every_library(cast: Cast, superuser: User) -> None:
    client = Client()
    client.force_login(superuser)

    response = client.get(reverse("admin:reflib_library_changelist"))

    assert set(response.context["cl"].result_list) == {cast.library, cast.other_library}


def test_each_staff_member_sees_only_their_own_libraries(cast: Cast) -> None:
    assert list(Library.objects.visible_to(cast.librarian)) == [cast.library]
    assert list(Library.objects.visible_to(cast.manager)) == [cast.library]
    assert list(Library.objects.visible_to(cast.other_librarian)) == [cast.other_library]


def test_only_managers_see_a_library_when_the_manager_role_is_asked_for(cast: Cast) -> None:
    assert list(Library.objects.visible_to(cast.manager, role=Role.MANAGER)) == [cast.library]
    assert not Library.objects.visible_to(cast.librarian, role=Role.MANAGER).exists()
    assert not Library.objects.visible_to(cast.other_librarian, role=Role.MANAGER).exists()


def test_each_staff_member_sees_only_their_own_librarys_queues(cast: Cast) -> None:
    assert list(Queue.objects.visible_to(cast.librarian)) == [cast.queue]
    assert list(Queue.objects.visible_to(cast.manager)) == [cast.queue]
    assert list(Queue.objects.visible_to(cast.other_librarian)) == [cast.other_queue]


def test_anonymous_visitor_sees_no_library_and_no_queue(cast: Cast) -> None:
    assert not Library.objects.visible_to(AnonymousUser()).exists()
    assert not Queue.objects.visible_to(AnonymousUser()).exists()


def test_deactivated_librarian_sees_nothing(cast: Cast) -> None:
    cast.librarian.is_active = False
    cast.librarian.save()

    assert not Library.objects.visible_to(cast.librarian).exists()
    assert not Queue.objects.visible_to(cast.librarian).exists()


def test_superuser_sees_every_library_and_queue(cast: Cast, superuser: User) -> None:
    assert set(Library.objects.visible_to(superuser)) == {cast.library, cast.other_library}
    assert set(Queue.objects.visible_to(superuser)) == {cast.queue, cast.other_queue}


def test_a_librarian_of_two_libraries_sees_each_once(cast: Cast) -> None:
    staff_upsert(username="lena", library=cast.other_library, role=Role.LIBRARIAN)

    assert list(Library.objects.visible_to(cast.librarian)) == [cast.library, cast.other_library]


def test_get_visible_answers_as_visible_to_for_every_user_role_and_library(
    cast: Cast, superuser: User
) -> None:
    """``get_visible`` is ``visible_to(...).get(slug=...)`` written as one statement: the same
    library, field for field, or none, for each kind of user."""
    staff_upsert(username="lena", library=cast.other_library, role=Role.MANAGER)
    inactive = staff_upsert(username="gone", library=cast.library, role=Role.MANAGER)
    inactive.is_active = False
    inactive.save()
    stranger = User.objects.create_user("stranger")
    users: list[User | AnonymousUser] = [
        cast.librarian,
        cast.manager,
        cast.other_librarian,
        superuser,
        inactive,
        stranger,
        AnonymousUser(),
    ]
    answers = 0
    for user in users:
        for role in Role:
            for slug in [cast.library.slug, cast.other_library.slug, "no-such-library"]:
                expected = Library.objects.visible_to(user, role=role).filter(slug=slug).first()
                try:
                    found = Library.objects.get_visible(user, slug=slug, role=role)
                except Library.DoesNotExist:
                    found = None
                assert found == expected, (user, role, slug)
                if found is not None and expected is not None:
                    answers += 1
                    fields = Library._meta.concrete_fields
                    assert [f.value_from_object(found) for f in fields] == [
                        f.value_from_object(expected) for f in fields
                    ]
    # Libraries found, so that the comparison is not of nothing with nothing: the librarian
    # (lena, now also the other library's manager) 3, the manager 2, the other librarian 1,
    # the superuser 4.
    assert answers == 10
