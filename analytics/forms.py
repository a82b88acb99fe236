"""Forms of the analytics app: the desk's tally, the manager views' filters, the import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from crispy_forms.bootstrap import InlineRadios
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Layout
from django import forms
from django.db.models import QuerySet
from django.forms.models import ModelChoiceIterator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.models import CHAT_FORMAT, Category, CategoryKind
from analytics.selectors import MAX_DAYS, Scope, ShortLists
from chat.forms import READ_LEVELS
from reflib.models import Library, Queue, ServicePoint

DEFAULT_RANGE_DAYS = 28


def _entries(library: Library, kind: CategoryKind) -> QuerySet[Category]:
    """The entries of a library's list that are in use today."""
    return Category.objects.filter(library=library, kind=kind).active()


class TallyForm(forms.Form):
    """One question counted at a desk, on the phone, by e-mail...: everything but the format
    may be left as it was for the next question, so the common case is one click."""

    service_point = forms.ModelChoiceField(
        label=_("Service point"), queryset=ServicePoint.objects.none(), required=False
    )
    format = forms.ModelChoiceField(
        label=_("Format"),
        queryset=Category.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
    )
    question_type = forms.ModelChoiceField(
        label=_("Question type"),
        queryset=Category.objects.none(),
        widget=forms.RadioSelect,
        required=False,
        blank=True,
        empty_label=_("Not given"),
    )
    read_level = forms.TypedChoiceField(
        label=_("READ level"),
        choices=[*READ_LEVELS, ("", _("Not given"))],
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
        help_text=_("The effort the question took. When between two levels, choose the higher."),
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("No names or contact details of the patron."),
    )

    def __init__(self, *args: Any, library: Library, **kwargs: Any) -> None:
        # Unique ids on the desk page, which holds the conversations' forms too.
        kwargs.setdefault("auto_id", "tally-%s")
        super().__init__(*args, **kwargs)
        self.library = library
        point_field = self.fields["service_point"]
        assert isinstance(point_field, forms.ModelChoiceField)
        point_field.queryset = (
            ServicePoint.objects.for_library(library)
            .filter(is_active=True)
            .select_related("library")
        )
        format_field = self.fields["format"]
        assert isinstance(format_field, forms.ModelChoiceField)
        # Chats count themselves; the tally is for everything else.
        format_field.queryset = _entries(library, CategoryKind.FORMAT).exclude(
            pk__in=Category.objects.filter(
                library=library, kind=CategoryKind.FORMAT, slug=CHAT_FORMAT
            ).values("current_id")
        )
        type_field = self.fields["question_type"]
        assert isinstance(type_field, forms.ModelChoiceField)
        type_field.queryset = _entries(library, CategoryKind.QUESTION_TYPE)
        self.helper = FormHelper()
        self.helper.form_tag = False
        # Short lists side by side: the card stays small next to the queue.
        self.helper.layout = Layout(
            "service_point",
            InlineRadios("format"),
            InlineRadios("question_type"),
            "read_level",
            "note",
        )


class ShortListChoices(ModelChoiceIterator):
    """A short list's choices by one plain query, kept for the form's life (Django's own
    iterator opens a server-side cursor, three round trips, every time a select renders), or
    the rows the form was given."""

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        rows = getattr(self.field, "rows", None)
        for row in self.queryset if rows is None else rows:
            yield self.choice(row)


class ShortListField(forms.ModelChoiceField):
    iterator = ShortListChoices
    # The choices when the caller has read them already; a value is still checked against
    # the queryset.
    rows: list[Any] | None = None


class ScopeForm(forms.Form):
    """The manager views' filters; ``from`` and ``to`` are local dates, both inclusive.

    The choices are read only when the form is rendered (the statistics page, ``rendered``),
    never for a CSV; a CSV builds a choice list's query only for a filter it was given. The
    statistics page passes the ``lists`` it has read for itself: the choices come from them.
    """

    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    service_point = ShortListField(
        label=_("Service point"), queryset=ServicePoint.objects.none(), required=False
    )
    queue = ShortListField(label=_("Queue"), queryset=Queue.objects.none(), required=False)
    format = ShortListField(label=_("Format"), queryset=Category.objects.none(), required=False)

    # The URL parameters are ``from`` and ``to`` (a keyword in Python): map them here.
    PARAMETERS = {"from": "start", "to": "end"}

    def __init__(
        self,
        data: Any,
        *,
        library: Library,
        rendered: bool = False,
        lists: ShortLists | None = None,
    ) -> None:
        renamed = {self.PARAMETERS.get(key, key): value for key, value in data.items()}
        super().__init__(renamed)
        self.library = library
        # The labels of service points and queues name their library: read through the
        # library's own relation, each row knows it without a join.
        choices: dict[str, Callable[[], QuerySet[Any]]] = {
            "service_point": lambda: library.service_points.all(),
            "queue": lambda: library.queues.all(),
            "format": lambda: _entries(library, CategoryKind.FORMAT),
        }
        if lists is not None:
            given: dict[str, list[Any]] = {
                "service_point": lists.service_points,
                "queue": lists.queues,
                "format": lists.active(CategoryKind.FORMAT),
            }
        for name, rows in choices.items():
            field = self.fields[name]
            assert isinstance(field, ShortListField)
            if lists is not None:
                field.rows = given[name]
            # A field without a value is valid (empty) whatever its list; a value is checked
            # against the library's list.
            if renamed.get(name) not in (None, "") or (rendered and field.rows is None):
                field.queryset = rows()
        for name, field in self.fields.items():
            field.widget.attrs.setdefault(
                "class", "form-select" if "select" in field.widget.input_type else "form-control"
            )
            field.widget.attrs["id"] = f"filter-{name}"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        today = timezone.now().astimezone(self.library.zone).date()
        end: date = cleaned.get("end") or today
        start: date = cleaned.get("start") or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if end < start:
            raise forms.ValidationError(_("The end date is before the start date."))
        if (end - start).days > MAX_DAYS:
            raise forms.ValidationError(_("Choose a range of at most ten years."))
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def scope(self) -> Scope:
        data = self.cleaned_data
        return Scope(
            library=self.library,
            start=data["start"],
            end=data["end"],
            service_point_id=data["service_point"].pk if data.get("service_point") else None,
            queue_id=data["queue"].pk if data.get("queue") else None,
            format_id=data["format"].pk if data.get("format") else None,
        )

    def query(self) -> str:
        """The filters as URL parameters (for the CSV links)."""
        data = self.cleaned_data
        parts = {"from": data["start"].isoformat(), "to": data["end"].isoformat()}
        for name in ("service_point", "queue", "format"):
            if data.get(name):
                parts[name] = str(data[name].pk)
        return "&".join(f"{key}={value}" for key, value in parts.items())


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))
    mapping = forms.CharField(
        label=_("Column mapping"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "One SOURCE=FIELD per line, e.g. “Question Type=question_type” "
            "(see the statistics documentation for libstats, Gimlet and LibInsight)."
        ),
    )
    skip_bad = forms.BooleanField(
        label=_("Import the good rows and report the bad ones"), required=False
    )
    dry_run = forms.BooleanField(
        label=_("Dry run: check the file, import nothing"), required=False, initial=True
    )
