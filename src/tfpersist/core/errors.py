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


class Unsupported(TfpersistError):
    """A format that cannot hold this model (its converter refuses it; OpenCV's importer and a
    cnn's image reshape): left out, said why, the other formats shipped."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (TF's OpErrors carry it in ``message``)."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    # TF's OpErrors open with boilerplate ("Graph execution error:", "Detected at node ...").
    useful = [ln for ln in lines if not ln.startswith(_BOILERPLATE)]
    return (useful or lines or [type(error).__name__])[0][:300]


_BOILERPLATE = (
    "Graph execution error",
    "Detected at node",
    "Detected in the following",
    'File "',
    "Node:",
)


def unexpected(error: BaseException) -> str:
    """The one line shown for an exception that is not a TfpersistError."""
    return (
        f"unexpected {type(error).__name__}: {first_line(error)} "
        "(rerun with TFPERSIST_DEBUG=1 or --debug for the traceback, and please report it)"
    )
