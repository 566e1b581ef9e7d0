"""Read-only Credly Web Service API client: OAuth or authorization token, organizations, badges."""
