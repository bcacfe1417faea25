"""The project's user-facing error: command-line entry points print it as one line."""


class HSNetError(Exception):
    """A problem the user can fix (bad path, bad file, bad config); printed without traceback."""
