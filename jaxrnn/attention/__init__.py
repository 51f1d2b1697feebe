"""Attention: mechanisms over a memory, an attention wrapper cell, a seq2seq encoder-decoder, a synthetic task."""
