"""The Transformer encoder-decoder family (`model.type: transformer_seq2seq`)."""
