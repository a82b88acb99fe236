"""Routes of the analytics app: the desk's tally and the managers' stable CSV URLs."""

from django.urls import path

from analytics import report_views, views

urlpatterns = [
    path("analytics/tally/", views.tally, name="analytics_tally"),
    path("analytics/tally/form/", views.tally_form, name="analytics_tally_form"),
    path("analytics/tally/<int:pk>/undo/", views.tally_undo, name="analytics_tally_undo"),
    path(
        "analytics/<slug:library>/transactions.csv",
        views.transactions_csv,
        name="analytics_transactions_csv",
    ),
    path("analytics/<slug:library>/heatmap.csv", views.heatmap_csv, name="analytics_heatmap_csv"),
    path(
        "analytics/<slug:library>/service-levels.csv",
        views.service_levels_csv,
        name="analytics_service_levels_csv",
    ),
    path("analytics/<slug:library>/volume.csv", views.volume_csv, name="analytics_volume_csv"),
    path(
        "analytics/<slug:library>/read-levels.csv",
        views.read_levels_csv,
        name="analytics_read_levels_csv",
    ),
    path(
        "analytics/<slug:library>/question-types.csv",
        views.question_types_csv,
        name="analytics_question_types_csv",
    ),
    path(
        "analytics/<slug:library>/coverage.csv", views.coverage_csv, name="analytics_coverage_csv"
    ),
]

urlpatterns += [
    path(
        "analytics/<slug:library>/reports/<str:day>/",
        report_views.daily_report,
        name="analytics_daily_report",
    ),
    path(
        "analytics/<slug:library>/reports/<str:day>/csv",
        report_views.daily_report_csv,
        name="analytics_daily_report_csv",
    ),
]
