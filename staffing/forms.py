"""Forms of the staffing pages, rendered with crispy forms (Bootstrap 5).

Forms validate what a person typed; the services check the rules (conflicts, permissions)
and their refusals come back to the form as errors.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import TYPE_CHECKING, Any

from crispy_forms.helper import FormHelper
from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from reflib.models import Library, ServicePoint, display_name
from staffing import wallclock
from staffing.models import ShiftTemplate, Weekday

NOTE_MAX = 300


def _helper() -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    return helper


class StaffingForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class AvailabilityRowForm(StaffingForm):
    weekday = forms.TypedChoiceField(label=_("Day"), choices=Weekday.choices, coerce=int)
    start_time = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(
        label=_("Until"),
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_(
            "An end at or before the start is on the next day; equal times are a whole day."
        ),
    )


if TYPE_CHECKING:
    RowFormSet = forms.BaseFormSet[AvailabilityRowForm]
    ModelChoice = forms.ModelChoiceField[User]
    TemplateModelForm = forms.ModelForm[ShiftTemplate]
else:
    RowFormSet = forms.BaseFormSet
    ModelChoice = forms.ModelChoiceField
    TemplateModelForm = forms.ModelForm


class BaseAvailabilityFormSet(RowFormSet):
    def refused(self, error: forms.ValidationError) -> None:
        """Show a service's refusal above the periods."""
        self._non_form_errors = self.error_class(error.messages)

    def windows(self) -> list[tuple[int, time, time]]:
        return [
            (
                form.cleaned_data["weekday"],
                form.cleaned_data["start_time"],
                form.cleaned_data["end_time"],
            )
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


AvailabilityFormSet = forms.formset_factory(
    AvailabilityRowForm, formset=BaseAvailabilityFormSet, extra=2, can_delete=True, max_num=50
)


class AvailabilityExceptionForm(StaffingForm):
    day = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    available = forms.BooleanField(
        label=_("Available (an extra period)"),
        required=False,
        help_text=_("Unticked: not available on this date (all day, or at the times given)."),
    )
    start_time = forms.TimeField(
        label=_("From"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    end_time = forms.TimeField(
        label=_("Until"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("start_time"), data.get("end_time")
        if (start is None) != (end is None):
            raise forms.ValidationError(_("Give both times, or neither for the whole day."))
        if data.get("available") and start is None:
            raise forms.ValidationError(_("Give the times of the extra availability."))
        return data


class TimeOffForm(StaffingForm):
    start_date = forms.DateField(
        label=_("From (date)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    start_time = forms.TimeField(
        label=_("From (time)"), initial=time(0), widget=forms.TimeInput(attrs={"type": "time"})
    )
    end_date = forms.DateField(
        label=_("Until (date)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    end_time = forms.TimeField(
        label=_("Until (time)"),
        initial=time(23, 59),
        widget=forms.TimeInput(attrs={"type": "time"}),
    )
    reason = forms.CharField(label=_("Reason (optional)"), max_length=NOTE_MAX, required=False)

    def __init__(self, *args: Any, library: Library, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.library = library

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        zone = self.library.zone
        data["start"] = wallclock.local_instant(data["start_date"], data["start_time"], zone)
        data["end"] = wallclock.local_instant(data["end_date"], data["end_time"], zone)
        if data["end"] <= data["start"]:
            raise forms.ValidationError(_("The time off must end after it starts."))
        return data


class NoteForm(StaffingForm):
    note = forms.CharField(label=_("Note (optional)"), max_length=NOTE_MAX, required=False)


class StaffChoiceField(ModelChoice):
    def label_from_instance(self, obj: User) -> str:
        return display_name(obj)


class AssignForm(StaffingForm):
    user = StaffChoiceField(label=_("Staff member"), queryset=User.objects.none())
    override_note = forms.CharField(
        label=_("Override note"),
        max_length=NOTE_MAX,
        required=False,
        help_text=_("Only to keep an assignment despite its conflicts: say why."),
    )

    def __init__(self, *args: Any, staff: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["user"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = User.objects.filter(pk__in=[user.pk for user in staff]).order_by(
            "username"
        )


class ShiftTemplateForm(TemplateModelForm):
    class Meta:
        model = ShiftTemplate
        fields = [
            "service_point",
            "name",
            "weekday",
            "start_time",
            "end_time",
            "min_staff",
            "max_staff",
            "valid_from",
            "valid_until",
            "is_active",
        ]
        widgets = {
            "start_time": forms.TimeInput(attrs={"type": "time"}),
            "end_time": forms.TimeInput(attrs={"type": "time"}),
            "valid_from": forms.DateInput(attrs={"type": "date"}),
            "valid_until": forms.DateInput(attrs={"type": "date"}),
        }

    def __init__(self, *args: Any, library: Library, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.library = library
        field = self.fields["service_point"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ServicePoint.objects.for_library(library).filter(is_active=True)
        self.helper = _helper()


class DateRangeForm(StaffingForm):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("Until"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("start"), data.get("end")
        if isinstance(start, date) and isinstance(end, date) and end < start:
            raise forms.ValidationError(_("The last date is before the first date."))
        return data


def parse_week(value: str | None, today: date) -> date:
    """The Monday of the week given as ``YYYY-MM-DD`` (any day of it), else of ``today``'s."""
    try:
        day = date.fromisoformat(value) if value else today
    except ValueError:
        day = today
    return day - timedelta(days=day.weekday())
