"""Commands of this part of the assignment; they register themselves on a3cli.app.app."""

from __future__ import annotations
