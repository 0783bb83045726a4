"""Name scopes the decoders put ops in, for the exporter to find them in a converted file."""

# Beam search's running scores, lengths, finished flags and ranking: an int8 file keeps these
# ops in float (`Endpoint.float_scopes`), the network around them int8.
BEAM_BOOKKEEPING = "beam_bookkeeping"
