"""The RNN encoder-decoder family (`model.type: rnn_seq2seq`), with or without attention."""
