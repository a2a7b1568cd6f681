"""The two error tiers. A `UserError` is bad input: the CLI prints its one line and exits 2. Anything else is a
bug and keeps its traceback. `Unsupported` is raised by an adapter for a combination it cannot run; the cell is
recorded with status "unsupported", not as a failure."""


class UserError(Exception):
    """Bad input (names, numbers, files): one line saying what was expected and what was received."""


class DataError(UserError):
    """A dataset is missing, truncated, corrupt or of the wrong format."""


class Unsupported(Exception):
    """This adapter cannot run this combination (device, mode, ...) in this environment."""
