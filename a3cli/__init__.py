"""a3: hands-on tools for the ideas of CS231n Assignment 3."""

__version__ = "0.1.0"
