"""Events of the notifications context: delivery status of notifications."""

from __future__ import annotations
