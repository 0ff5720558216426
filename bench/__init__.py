"""Benchmarks: what users feel, side by side with what they would do instead (``make bench``)."""
