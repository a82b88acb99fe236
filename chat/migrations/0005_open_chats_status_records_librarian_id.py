"""Status events record the answering librarian's user id, by which a desk knows a chat is its
own (``mine``). Chats open at upgrade time get it on their latest status event, so that their
librarian keeps the owner's tools; closed chats need none."""

from django.db import migrations


def record_librarian_id(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    Event = apps.get_model("chat", "Event")
    open_chats = Conversation.objects.filter(
        status__in=["queued", "active"], librarian__isnull=False
    )
    for conversation in open_chats.iterator():
        latest = (
            Event.objects.filter(conversation=conversation, kind="status").order_by("-seq").first()
        )
        if latest is not None and "librarian_id" not in latest.data:
            latest.data = {**latest.data, "librarian_id": conversation.librarian_id}
            latest.save(update_fields=["data"])


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_remove_unused_ticket_source_and_participant_joined_at"),
    ]

    operations = [migrations.RunPython(record_librarian_id, migrations.RunPython.noop)]
