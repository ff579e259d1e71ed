"""The one exception type for errors a user can cause (bad file, bad sequence, missing weights)."""

from __future__ import annotations


class OneProtError(Exception):
    """A user-facing error. The CLI prints it without a traceback; the app shows it in the page.

    `where` names the file, field or argument at fault so the message can point at it.
    """

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
