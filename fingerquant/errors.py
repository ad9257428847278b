"""Project error types."""


class DataError(Exception):
    """A recording, data folder or cache that cannot be used as it is.

    The message names the file (and line, where there is one), what was wrong
    and what was expected, so that entry points can show it without a traceback.
    """
