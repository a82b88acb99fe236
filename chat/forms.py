"""Forms of the chat's staff pages and the patron's ticket page, rendered with crispy forms.

The desk's conversation forms are rendered once into an HTML ``<template>`` and cloned by the
desk's JavaScript for each open conversation: their ids carry the ``__ID__`` marker, which the
script replaces with the conversation's id so that every label stays tied to its field.
"""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Layout, Submit
from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from chat.models import Ticket, TicketStatus
from reflib.models import display_name

TICKET_BODY_MAX = 10000
MESSAGE_MAX = 4000
PANEL_AUTO_ID = "conv-__ID__-%s"

# The READ scale (Bella Karr Gerlich, readscale.org): the effort a question took.
READ_LEVELS = [
    (1, _("1 — Least effort, no specialised knowledge, under 5 minutes (directions, hours).")),
    (2, _("2 — Minimal knowledge, nominal resources (call numbers, item location, policies).")),
    (
        3,
        _(
            "3 — Some effort, ready-reference resources, minimal instruction (catalogue "
            "instruction, pointing to databases)."
        ),
    ),
    (
        4,
        _(
            "4 — Several resources, subject knowledge, instruction (complex search strategies, "
            "interlibrary loan)."
        ),
    ),
    (
        5,
        _(
            "5 — More time, scheduled or cooperative work, several resources "
            "(interdisciplinary research, false leads)."
        ),
    ),
    (
        6,
        _(
            "6 — Most effort, cannot be answered on the spot, in-depth research "
            "(bibliographies, faculty and doctoral research)."
        ),
    ),
]


def _helper(*, form_tag: bool = False) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = form_tag
    helper.disable_csrf = not form_tag
    return helper


# --- the desk's conversation panel ----------


class PanelForm(forms.Form):
    """A form the desk's script submits over the WebSocket; the script checks what it needs."""

    use_required_attribute = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", PANEL_AUTO_ID)
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class DeskMessageForm(PanelForm):
    body = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "data-field": "body"}),
        help_text=_("Enter sends; Shift+Enter starts a new line."),
    )


class DeskCannedSearchForm(PanelForm):
    query = forms.CharField(
        label=_("Search canned responses"),
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "data-field": "canned-query"}),
        help_text=_("{name} becomes the patron's name, {librarian} your display name."),
    )


class DeskTransferForm(PanelForm):
    target = forms.ChoiceField(
        label=_("Transfer to"),
        required=False,
        choices=[("", _("Choose a colleague or a queue"))],
        widget=forms.Select(attrs={"data-field": "target"}),
    )
    note = forms.CharField(
        label=_("Note for the next librarian"),
        required=False,
        max_length=MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "data-field": "note"}),
        help_text=_("Kept as an internal note: the patron never sees it."),
    )


class DeskCloseForm(PanelForm):
    read_level = forms.TypedChoiceField(
        label=_("READ level"),
        choices=READ_LEVELS,
        coerce=int,
        required=False,
        widget=forms.RadioSelect(attrs={"data-field": "read-level"}),
        help_text=_("The effort the question took. When between two levels, choose the higher."),
    )
    tags = forms.CharField(
        label=_("Tags"),
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"data-field": "tags"}),
        help_text=_("Separate tags with commas, e.g. hours, printing."),
    )


# --- follow-up tickets ----------


class TicketFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("Any status")), *TicketStatus.choices], required=False
    )
    mine = forms.BooleanField(label=_("Only tickets assigned to me"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(form_tag=True)
        self.helper.form_method = "get"
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Div(
                Div("status", css_class="col-sm-auto"),
                Div("mine", css_class="col-sm-auto"),
                Div(Submit("filter", _("Filter")), css_class="col-sm-auto mb-3"),
                css_class="row gx-4 align-items-end",
            )
        )


class LibrarianChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return display_name(obj)


class TicketAssignForm(forms.Form):
    assignee = LibrarianChoiceField(
        label=_("Assigned to"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("Nobody"),
    )

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.ModelChoiceField)
        # Only librarians of the ticket's own library can be given it.
        field.queryset = (
            User.objects.filter(is_active=True, memberships__library_id=ticket.library_id)
            .select_related("staff_profile")
            .distinct()
            .order_by("username")
        )
        self.helper = _helper(form_tag=True)
        self.helper.add_input(Submit("assign", _("Assign"), css_class="btn-secondary"))


class TicketAnswerForm(forms.Form):
    body = forms.CharField(
        label=_("Answer"),
        max_length=TICKET_BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("E-mailed to the patron with a new private link to this ticket."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(form_tag=True)
        self.helper.add_input(Submit("answer", _("Send answer")))


class TicketReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Your reply"),
        max_length=TICKET_BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(form_tag=True)
        self.helper.add_input(Submit("reply", _("Send reply")))
