"""Events of the inclusion context: programmes, sessions, enrolments, device loans,
vouchers and outcomes."""

from __future__ import annotations
