"""Who a badge belongs to and what goes on their profile: pure functions, no I/O.

The sync and the diagnostics share these rules so that an explanation always describes what the
sync actually does. Every rule credlyctl decided on its own is listed in docs/sync.md.
"""
