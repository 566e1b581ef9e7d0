"""Entra ID authentication (msal) and the Microsoft Graph client."""
