"""The two error tiers. A `UserError` is bad input: the CLI prints its one line and exits 2. Anything else is a
bug and keeps its traceback. `Unsupported` is raised by an adapter for a combination it cannot run; the cell is
recorded with status "unsupported", not as a failure. `Terminated` is a stop signal, handled as Ctrl-C is."""

import signal


class UserError(Exception):
    """Bad input (names, numbers, files): one line saying what was expected and what was received."""


class DataError(UserError):
    """A dataset is missing, truncated, corrupt or of the wrong format."""


class Unsupported(Exception):
    """This adapter cannot run this combination (device, mode, ...) in this environment."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived (a CI timeout, a scheduler's cancel, a closed terminal). A KeyboardInterrupt, so
    whatever Ctrl-C does applies unchanged: the running cell is killed and nothing half-done is recorded."""

    def __init__(self, number: int):
        super().__init__(signal.Signals(number).name)
        self.number = number
