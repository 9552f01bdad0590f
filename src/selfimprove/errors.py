"""Errors a user can act on (house rule 10).

A ``UserError`` names the file, the line or example id, and the field. The CLI prints its message on one
line and exits with status 2; no traceback unless ``--debug``. A run whose requests failed past their retries
is *incomplete*, not done: the CLI exits with status 3 and ``--resume`` retries exactly the failed work.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2
"""Bad input (a file, a flag, a run id, the store): nothing was run, no run was left half-written."""
EXIT_INCOMPLETE = 3
"""The run finished but some requests failed past their retries; it is stored as 'incomplete' and
``--resume RUN_ID`` retries exactly the failed requests."""


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


class RunIncomplete(Exception):
    """Work that failed past its retries (a failed generation round, say); the run is stored 'incomplete'
    and the CLI exits with ``EXIT_INCOMPLETE``. The message says what failed and how to resume."""
