"""Importers of checkpoints from other toolkits into kseq run directories."""

from kseq.importers.hf_bert import import_hf_bert

__all__ = ["import_hf_bert"]
