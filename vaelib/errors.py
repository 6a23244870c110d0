"""User-facing errors: each carries one sentence saying what is wrong and what to do.

Notebooks and the CLI let these propagate; `python -m vaelib` prints the message without a traceback.
"""


class VaelibError(RuntimeError):
    """Base class for problems the user can fix (bad data, bad checkpoint, bad parameter)."""


class DataError(VaelibError):
    """The dataset is missing, partial in an unusable way, or malformed."""


class CheckpointError(VaelibError):
    """A checkpoint is missing, truncated, or belongs to another configuration."""


class ConfigError(VaelibError):
    """An unknown profile, parameter, or an ill-typed value."""


class MissingPrerequisiteError(VaelibError):
    """An earlier notebook has not produced what this one reads."""


class TrainingDivergedError(VaelibError):
    """The loss became NaN or infinite; the message says whether a good checkpoint exists to resume from."""


class WriteFailedError(VaelibError):
    """A file could not be written: the disk is full or the folder is not writable."""


class RunLockedError(VaelibError):
    """Another process is writing the same run folder."""
