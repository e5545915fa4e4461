"""Recording files: the sink, the seekable reader, the follower, decoding, locks."""
