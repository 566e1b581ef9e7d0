"""`python -m credly_connector`: the same program as the `credlyctl` command."""

from credly_connector.cli.app import main

if __name__ == "__main__":
    main()
