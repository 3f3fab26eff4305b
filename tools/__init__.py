"""Developer tools that are not part of the worker itself (stand-in weights, benchmarks helpers)."""
