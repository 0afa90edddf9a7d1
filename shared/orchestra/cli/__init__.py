"""The `orchestra` command line."""
