"""Errors meant for the user. Each message is one line naming the file/key and what is wrong."""


class EverError(Exception):
    """Base class: ``ever`` prints the message on one line and exits with status 2."""


class DataError(EverError):
    """Unreadable, corrupt, missing or inconsistent input data (video, frames, masks, annotations)."""


class CheckpointError(EverError):
    """A checkpoint that is missing, corrupt or made for another architecture."""
