"""Errors a user can act on (house rule 10).

A ``UserError`` names the file, the line or example id, and the field. The CLI prints its message on one
line and exits with status 2; no traceback unless ``--debug``.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a file, a flag, an option. Exit status 2."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 example_id: str | None = None, field: str | None = None) -> None:
        self.path, self.line, self.example_id, self.field = path, line, example_id, field
        where = []
        if path is not None:
            where.append(f"{path}:{line}" if line is not None else str(path))
        if example_id is not None:
            where.append(f"example {example_id}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class CapabilityError(UserError):
    """A run needs a capability its backend does not declare; it refuses to start."""
