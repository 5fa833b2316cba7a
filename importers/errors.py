"""The one error of the importers: a file that cannot become a train dir."""


class WeightsError(ValueError):
    """A missing, unreadable or foreign weights file, or one that disagrees with another input;
    the message is one line naming the file and what is wrong."""


def first_line(error):
    """The first line of an exception's message (library messages can run over many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
