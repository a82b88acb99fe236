"""Transactions keep their local date, weekday and hour (the library's wall clock), stamped for
the rows that exist in one UPDATE per library; the library/started index carries them and the
library/format/started index the columns of the chat service levels."""

from typing import Any
from zoneinfo import ZoneInfo

from django.db import migrations, models
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate


def stamp_local_time(apps: Any, schema_editor: Any) -> None:
    Library = apps.get_model("reflib", "Library")
    Transaction = apps.get_model("analytics", "Transaction")
    for library_id, name in Library.objects.values_list("pk", "timezone"):
        zone = ZoneInfo(name)
        Transaction.objects.filter(library_id=library_id).update(
            local_date=TruncDate("started_at", tzinfo=zone),
            local_weekday=ExtractIsoWeekDay("started_at", tzinfo=zone) - 1,
            local_hour=ExtractHour("started_at", tzinfo=zone),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_daily_reports"),
        ("reflib", "0003_library_card_patterns"),
    ]

    operations = [
        migrations.AddField(
            model_name="transaction",
            name="local_date",
            field=models.DateField(editable=False, null=True, verbose_name="local date"),
        ),
        migrations.AddField(
            model_name="transaction",
            name="local_weekday",
            field=models.PositiveSmallIntegerField(
                editable=False, null=True, verbose_name="local weekday"
            ),
        ),
        migrations.AddField(
            model_name="transaction",
            name="local_hour",
            field=models.PositiveSmallIntegerField(
                editable=False, null=True, verbose_name="local hour"
            ),
        ),
        migrations.RunPython(stamp_local_time, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="transaction",
            name="local_date",
            field=models.DateField(editable=False, verbose_name="local date"),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="local_weekday",
            field=models.PositiveSmallIntegerField(editable=False, verbose_name="local weekday"),
        ),
        migrations.AlterField(
            model_name="transaction",
            name="local_hour",
            field=models.PositiveSmallIntegerField(editable=False, verbose_name="local hour"),
        ),
        migrations.RemoveIndex(model_name="transaction", name="txn_library_started"),
        migrations.AddIndex(
            model_name="transaction",
            index=models.Index(
                fields=["library", "started_at"],
                include=(
                    "local_date",
                    "local_weekday",
                    "local_hour",
                    "read_level",
                    "question_type",
                ),
                name="txn_library_started_local",
            ),
        ),
        migrations.RemoveIndex(model_name="transaction", name="txn_library_format_started"),
        migrations.AddIndex(
            model_name="transaction",
            index=models.Index(
                fields=["library", "format", "started_at"],
                include=(
                    "outcome",
                    "wait_s",
                    "first_response_s",
                    "duration_s",
                    "rolled_over",
                    "rating",
                ),
                name="txn_library_format_chat",
            ),
        ),
    ]
