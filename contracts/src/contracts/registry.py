"""Imports every module that defines events, so the registry in ``contracts.events`` is full."""

from contracts import citizen_services, inclusion, notifications, privacy  # noqa: F401
