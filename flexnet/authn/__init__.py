"""The one authentication pipeline (``pipeline.authenticate`` -> ``Decision``), passwords and
their policy, rate limits."""
