"""The one HTTP stack every credlyctl client uses: TLS, proxies, host guard, retries, counts."""

from credly_connector.net.msal_adapter import MsalHttpClient
from credly_connector.net.retry import (
    MAX_RETRY_AFTER_SECONDS,
    Retrier,
    RetryAfterTooLong,
    RetryPolicy,
    RetryStats,
    RetryWait,
    attempt_budget,
    backoff_delay,
    is_remote_status,
    parse_retry_after,
)
from credly_connector.net.stats import RequestStats
from credly_connector.net.transport import (
    USER_AGENT,
    build_http_client,
    ensure_same_origin,
    is_tls_error,
)

__all__ = [
    "MAX_RETRY_AFTER_SECONDS",
    "USER_AGENT",
    "MsalHttpClient",
    "RequestStats",
    "Retrier",
    "RetryAfterTooLong",
    "RetryPolicy",
    "RetryStats",
    "RetryWait",
    "attempt_budget",
    "backoff_delay",
    "build_http_client",
    "ensure_same_origin",
    "is_remote_status",
    "is_tls_error",
    "parse_retry_after",
]
