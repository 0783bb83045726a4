"""The sequence-to-sequence families: what they share (text data, tokenizers, decoding, metrics,
export) here, and each architecture's spec, layers, graph and family in `rnn/` and
`transformer/`."""
