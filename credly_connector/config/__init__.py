"""Configuration: the TOML file, its precedence rules, secret references and offline checks."""
