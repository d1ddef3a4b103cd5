"""Errors a user sees: each names the file and the field that is wrong, never a traceback."""


class HilError(Exception):
    """Base of every error hil reports to a user in one line."""


class ConfigError(HilError):
    """A rig or scenario file (or a command-line value) that cannot be used as written."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: {field}: {problem}")


class LinkError(HilError):
    """A link to a board that cannot be opened or has stopped answering."""
