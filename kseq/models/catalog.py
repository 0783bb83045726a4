"""Imports every family's builder so it registers under its `type:` name."""

from kseq.models.autoencoder import family as _autoencoder  # noqa: F401
