"""A simulated Credly organization, Entra ID tenant and Microsoft Graph, over HTTPS on 127.0.0.1.

Written from ../shared/reference/ and sharing no model or parsing code with the client, so a
client bug cannot be mirrored here. Behaviours that are only inferred are switches.
"""
