"""The one exception type users see: a one-line message saying what is wrong and what is right."""


class TfpersistError(Exception):
    """A problem with the user's input (params, data, model files), not a bug.

    Entry points (stage scripts, the CLI) print ``error: <message>`` and exit non-zero
    without a traceback. Messages are one line: what is wrong, and what would be right.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class UsageError(TfpersistError):
    """Wrong command-line usage (exit status 2 rather than 1)."""
