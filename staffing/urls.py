"""Routes of the staffing pages under ``/staffing/``, the roster CSV and the calendar feed."""

from django.urls import path

from staffing import feeds, views

app_name = "staffing"

urlpatterns = [
    path("", views.my_shifts, name="my_shifts"),
    path("calendar/reset/", views.feed_reset, name="feed_reset"),
    path("feed/<str:secret>.ics", feeds.calendar_feed_view, name="feed"),
    path("offers/<int:assignment_id>/offer/", views.offer_create, name="offer_create"),
    path("offers/<int:offer_id>/withdraw/", views.offer_withdraw, name="offer_withdraw"),
    path("offers/<int:offer_id>/claim/", views.offer_claim, name="offer_claim"),
    path("open/", views.open_shifts, name="open_shifts"),
    path("open/<int:shift_id>/claim/", views.shift_claim, name="shift_claim"),
    path("availability/", views.availability, name="availability"),
    path("availability/exceptions/", views.exception_add, name="exception_add"),
    path(
        "availability/exceptions/<int:exception_id>/remove/",
        views.exception_remove,
        name="exception_remove",
    ),
    path("time-off/", views.time_off, name="time_off"),
    path("time-off/<int:request_id>/withdraw/", views.time_off_withdraw, name="time_off_withdraw"),
    path("<slug:library>/roster.csv", feeds.roster_csv_view, name="roster_csv"),
    path("<slug:library>/week/", views.week, name="week"),
    path("<slug:library>/shifts/<int:shift_id>/", views.shift_detail, name="shift"),
    path("<slug:library>/assignments/<int:assignment_id>/remove/", views.unassign, name="unassign"),
    path("<slug:library>/templates/", views.templates, name="templates"),
    path("<slug:library>/templates/<int:template_id>/", views.templates, name="template_edit"),
    path("<slug:library>/generate/", views.generate, name="generate"),
    path("<slug:library>/approvals/", views.approvals, name="approvals"),
    path(
        "<slug:library>/approvals/<str:kind>/<int:pk>/<str:action>/",
        views.decide,
        name="decide",
    ),
    path("<slug:library>/coverage/", views.coverage, name="coverage"),
    path("<slug:library>/coverage/apply/", views.autofill_apply, name="autofill_apply"),
]
