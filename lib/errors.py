"""Errors that reach the user as one line (the command line prints them and exits non-zero)."""


class UserError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(UserError):
    """Data is missing, unreadable, unsafe or does not match the specification."""


class RenderError(UserError):
    """The report cannot be rendered: a missing variable, notebook, cell label or reference."""
