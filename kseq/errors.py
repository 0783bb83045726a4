"""The one exception type users see: every user error is a KseqError, printed as one line."""


class KseqError(Exception):
    """A user-facing error (bad spec, bad data, failed export). The CLI exits 2 on it."""

    exit_code = 2


class ExportError(KseqError):
    """An artifact could not be produced, or failed its parity gate."""
