"""Importers of checkpoints from other toolkits into kseq run directories (`kseq import KIND`)."""

from kseq.models.bert.hf_import import import_hf_bert
from kseq.registry import Registry

importers: Registry = Registry("checkpoint kind")
importers.register("hf-bert")(import_hf_bert)

__all__ = ["import_hf_bert", "importers"]
