"""Project exceptions: each carries a one-line message a user can act on."""


class WorkbenchError(Exception):
    """Base class: the CLI and the pages print its message as one line, never a traceback."""

    exit_code = 2


class InputError(WorkbenchError):
    """Bad input from the user: an unreadable file, a missing column, a bad roles file."""


class StoreUnwritableError(WorkbenchError):
    """The store cannot be written now; an optional write (a cache, a recorded run) skips, a required one says so."""


class StoreBusyError(StoreUnwritableError):
    """The store is locked by another writer for longer than the retry budget."""


class ReadOnlyError(StoreUnwritableError):
    """The workbench runs read-only ($WORKBENCH_READ_ONLY): nothing is written to a store or a folder."""
