"""Errors a user can act on. The CLI prints them without a traceback."""


class H2RError(Exception):
    """Base class: the message names the file/key/feature and what was expected."""


class DataError(H2RError):
    """A dataset is missing, malformed, or does not match what is expected."""


class CheckpointError(H2RError):
    """A checkpoint is missing, incomplete, or from another model/config."""


class StudyError(H2RError):
    """A study config or study directory is invalid."""
