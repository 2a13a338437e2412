"""The two ways a job stops on purpose: bad input, and an output volume without space."""

from __future__ import annotations

import errno
from pathlib import Path


class OfflineError(ValueError):
    """Bad arguments or an output folder that cannot take this job; the message names the field or file."""


class DiskFullError(OSError):
    """The output volume ran out of space (or quota). Nothing partial is left at a final name, and the same
    command resumes the job once space is free; the message names the folder."""

    def __init__(self, out: Path, cause: OSError):
        self.out = Path(out)
        where = f" writing {cause.filename}" if cause.filename else ""
        super().__init__(
            cause.errno,
            f"no space left in {self.out}{where} ({cause.strerror or cause}). Finished units are kept and "
            "no partial file is left at a final name: free some space, then rerun the same command to "
            "resume the job.",
        )

    def __str__(self) -> str:
        return self.strerror or super().__str__()


# ENOSPC: the file system is full; EDQUOT: the user's quota is (reported the same way: nothing was lost).
FULL = {errno.ENOSPC, errno.EDQUOT}


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL
