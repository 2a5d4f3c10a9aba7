"""Kafka messaging: outbox (``outbox``, ``tables``), relay (``relay``), consumer (``consumer``:
the loop) with its inbox (``inbox``), retries and DLQ (``dlq``). Import the modules
themselves: this package re-exports nothing, so :mod:`servicekit.db` can use
:mod:`servicekit.messaging.outbox` without a cycle."""
