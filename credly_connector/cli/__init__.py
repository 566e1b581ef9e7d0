"""The command-line skin: Typer commands and rendering only. No HTTP, no business rules."""
