"""Patchwarden: a security review bot for Gerrit patchsets and GitHub pull requests."""

__version__ = "0.1.0"
