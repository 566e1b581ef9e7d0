"""The one HTTP stack every credlyctl client uses: TLS, proxies, host guard, retries, counts."""

from credly_connector.net.msal_adapter import MsalHttpClient
from credly_connector.net.retry import (
    Retrier,
    RetryPolicy,
    RetryStats,
    backoff_delay,
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
    "USER_AGENT",
    "MsalHttpClient",
    "RequestStats",
    "Retrier",
    "RetryPolicy",
    "RetryStats",
    "backoff_delay",
    "build_http_client",
    "ensure_same_origin",
    "is_tls_error",
    "parse_retry_after",
]
