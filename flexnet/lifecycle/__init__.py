"""Lifecycle: pure date rules (automatic lock, notice periods) and, later, the batch job."""
