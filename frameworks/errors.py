"""The error tiers both sides of a cell share. A `UserError` is bad input: the CLI prints its one line and exits 2
(a `DataError` is raised by the data readers, in the harness's check before a run and in a cell alike). Anything
else is a bug and keeps its traceback. `Unsupported` is raised by an adapter for a combination it finds it cannot
run; the cell is recorded with status "unsupported", not as a failure."""


class UserError(Exception):
    """Bad input (names, numbers, files): one line saying what was expected and what was received."""


class DataError(UserError):
    """A dataset is missing, truncated, corrupt or of the wrong format."""


class Unsupported(Exception):
    """This adapter cannot run this combination (device, mode, ...) in this environment."""
