"""The sync core: plan, write and remember what reached Microsoft 365 and why."""
