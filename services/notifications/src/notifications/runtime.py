"""What a running notifications service holds (``app.state.runtime``), built once by
``create_app``: the Notify API's rate limiter, key cache and template cache, and the email
and SMS senders the delivery workers use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from notifications.adapters.email import SmtpSender
from notifications.adapters.sms import SmsSender
from notifications.application.delivery import sms_sender_for
from notifications.application.notify_auth import KeyCache, read_keys
from notifications.application.notify_limits import NotifyLimiter, make_notify_limiter
from notifications.application.notify_send import TemplateCache
from notifications.config import Settings
from notifications.persistence.notify_services import NotifyServiceRepository
from servicekit.app import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass
class NotificationsRuntime(ServiceRuntime):
    settings: Settings  # the service's own (create_app passes them)
    #: The Notify rate limit (per service and key type): in Redis, shared by every process,
    #: when ``redis_url`` is set; else this process's own.
    notify_rate_limiter: NotifyLimiter = field(init=False)
    #: This process's Notify keys (the admin API forgets a service on revocation).
    notify_key_cache: KeyCache = field(init=False)
    #: Opens the keys' repository on a read session (only when the key cache misses).
    notify_keys: Callable[[], AbstractAsyncContextManager[NotifyServiceRepository]] = field(
        init=False
    )
    notify_template_cache: TemplateCache = field(init=False)
    email_sender: SmtpSender = field(init=False)
    sms_sender: SmsSender = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.notify_rate_limiter = make_notify_limiter(
            settings.notify_rate_limit_per_minute, settings.redis_url
        )
        if settings.production_like and not settings.redis_url:
            log.warning(
                "NOTIFICATIONS_REDIS_URL is not set: the Notify rate limit holds per process, "
                "so several workers or replicas together allow more than %d a minute",
                settings.notify_rate_limit_per_minute,
            )
        self.notify_key_cache = KeyCache(settings.notify_key_cache_seconds)
        self.notify_keys = read_keys(self.database)
        self.notify_template_cache = TemplateCache()
        self.email_sender = SmtpSender(settings, pool_size=settings.delivery_concurrency)
        self.sms_sender = sms_sender_for(settings)
