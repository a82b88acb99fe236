"""The chat's writes (STYLE.md: services own writes), one module per subject.

- ``conversations``: start, accept, transfer, close, rate, erase, end, block, and the queue
  bookkeeping each change causes;
- ``messages``: messages and notes (the hot path), files, check-ins, read marks;
- ``presence``: librarians' presence and the patron's socket;
- ``tickets``: tickets created from the widget or from a waiting chat;
- ``sweep``: the timers;
- ``screen_sharing``: the transcript's record of a screen share;
- ``checks``: who may do what, run before a write; ``base``: appending to a log.

Follow-up tickets after their creation are written by chat.ticket_services, retention's
deletions by chat.retention, and a screen share's consent state (in the cache) by
chat.sharing. Callers use this package's names: ``services.conversation_accept(...)``.
"""

from chat.services.checks import (
    check_can_block,
    check_can_see,
    check_patron_not_blocked,
    staff_conversation,
)
from chat.services.conversations import (
    NO_SUCH_COLLEAGUE,
    StartedConversation,
    clean_tags,
    conversation_accept,
    conversation_close,
    conversation_email_set,
    conversation_end_by_patron,
    conversation_erase,
    conversation_rate,
    conversation_start,
    conversation_transfer,
    patron_block,
    positions_publish,
)
from chat.services.messages import (
    checkin_answer,
    checkin_send,
    file_attach,
    file_upload,
    message_send,
    read_mark,
)
from chat.services.presence import (
    patron_connection,
    patrons_alive,
    presence_set,
    presence_stay,
    presence_touch,
    presences_touch,
)
from chat.services.screen_sharing import screen_sharing_record
from chat.services.sweep import SweepResult, sweep
from chat.services.tickets import CreatedTicket, conversation_to_ticket, ticket_create

__all__ = [
    "NO_SUCH_COLLEAGUE",
    "CreatedTicket",
    "StartedConversation",
    "SweepResult",
    "check_can_block",
    "check_can_see",
    "check_patron_not_blocked",
    "checkin_answer",
    "checkin_send",
    "clean_tags",
    "conversation_accept",
    "conversation_close",
    "conversation_email_set",
    "conversation_end_by_patron",
    "conversation_erase",
    "conversation_rate",
    "conversation_start",
    "conversation_to_ticket",
    "conversation_transfer",
    "file_attach",
    "file_upload",
    "message_send",
    "patron_block",
    "patron_connection",
    "patrons_alive",
    "positions_publish",
    "presence_set",
    "presence_stay",
    "presence_touch",
    "presences_touch",
    "read_mark",
    "screen_sharing_record",
    "staff_conversation",
    "sweep",
    "ticket_create",
]
