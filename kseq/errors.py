"""The one exception type users see: every user error is a KseqError, printed as one line."""


class KseqError(Exception):
    """A user-facing error (bad spec, bad data, failed export). The CLI exits 2 on it."""

    exit_code = 2
    label = "error: "  # the CLI prints `kseq: {label}{message}`


class ExportError(KseqError):
    """An artifact could not be produced, or failed its parity gate."""


class DiskFullError(KseqError):
    """The disk ran out of space; what was written before is intact."""

    label = ""

    def __init__(self, path, detail: str = ""):
        super().__init__(f"no space left on device while writing {path}{detail}")


class WorkerLost(KseqError):
    """A multi-worker run lost a worker (its collectives were aborted); every worker's
    checkpoint is intact and the same command rejoins the cluster and resumes."""

    label = ""


def write_error(path, error: OSError, kind: type[KseqError] = KseqError) -> KseqError:
    """The one-line error for an OSError raised while writing `path` (disk full, or `kind`)."""
    import errno

    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(path)
    return kind(f"cannot write {path}: {error.strerror or error}")
