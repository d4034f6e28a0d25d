"""Errors meant for the user. Each message is one line naming the file/key and what is wrong."""


class EverError(Exception):
    """Base class: ``ever`` prints the message on one line and exits with status 2."""


class DataError(EverError):
    """Unreadable, corrupt, missing or inconsistent input data (video, frames, masks, annotations)."""


class CheckpointError(EverError):
    """A checkpoint that is missing, corrupt or made for another architecture."""


def one_line_errors(iterable):
    """Iterate, re-raising an :class:`EverError` from a DataLoader worker with its own one-line message.

    PyTorch re-raises a worker's exception in the main process with the worker's traceback in its
    message ("Caught DataError in DataLoader worker process 0. Original Traceback ..."); the last line
    of that traceback is the original message."""
    try:
        yield from iterable
    except EverError as e:
        text = str(e)
        if "Original Traceback" not in text:
            raise
        last = text.strip().splitlines()[-1]
        raise type(e)(last.split(": ", 1)[1] if last.startswith("ever.errors.") else last) from None
