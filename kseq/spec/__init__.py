"""The spec language. Import from `kseq.spec.load` (kept out of here to avoid import cycles)."""
