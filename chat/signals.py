"""Signals the chat sends to the apps above it (analytics).

``conversation_ended(conversation_id)`` is sent after commit when a conversation reaches a
final state (closed, abandoned, missed, ticket); ``conversation_rated(conversation_id)`` after
commit when the patron rates an ended conversation. Receivers must be idempotent.
"""

from django.dispatch import Signal

conversation_ended = Signal()
conversation_rated = Signal()
