"""a3: hands-on tools for the ideas of CS231n Assignment 3."""

from importlib import metadata

try:
    __version__ = metadata.version("a3cli")  # pyproject.toml says it once
except metadata.PackageNotFoundError:  # run from a source tree that was not installed
    __version__ = "unknown (not installed)"
