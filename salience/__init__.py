"""salience: which parts of a prompt the model relies on, live in the editor."""

__version__ = "0.1.0"
