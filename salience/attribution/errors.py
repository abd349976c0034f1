"""Typed errors for user input: each carries one line that names the fix."""


class SalienceError(Exception):
    """Base of every error meant to be shown to the user as one line."""


class ModelLoadError(SalienceError):
    """The model could not be found, read or is not supported."""


class PromptError(SalienceError):
    """The prompt file cannot be read or parsed."""


class UnknownMethodError(SalienceError):
    """No attribution method is registered under that name."""


class ParameterError(SalienceError):
    """Method parameters or targets do not fit."""


class Cancelled(SalienceError):
    """The run was cancelled by its caller between batches."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message (a library's traceback-like text stays out of a diagnostic)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
