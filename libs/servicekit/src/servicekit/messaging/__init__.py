"""Kafka messaging: outbox (``outbox``, ``tables``), relay (``relay``), consumer with inbox,
retries and DLQ (``consumer``). Import the modules themselves: this package re-exports
nothing, so :mod:`servicekit.db` can use :mod:`servicekit.messaging.outbox` without a cycle."""
