"""Human image animation toolkit: data shards, reference models, a benchmark harness and reports."""

__version__ = "0.1.0"
