"""The one exception a user sees: a single line that names the file, column, row or key and says what to do."""


class LaminaError(Exception):
    """Bad input from the user. The CLI prints ``str(error)`` on one line and exits with code 2.

    >>> raise LaminaError("data.csv: column 'age' is missing; add it or remove it from the config")
    """


def where(source: str | None, message: str) -> str:
    """Prefix a message with the file (or other source) it is about, when known."""
    return f"{source}: {message}" if source else message


def row_name(label: object) -> str:
    """How a row is named in messages: 1-based for the integer rows of a file, else the frame's own index label."""
    import numbers

    return str(int(label) + 1) if isinstance(label, numbers.Integral) else repr(label)
