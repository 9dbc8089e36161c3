"""Coverage-guided fuzzers (atheris/libFuzzer) for flexnet's untrusted-input parsers.

Run from the repository root, e.g. ``python -m fuzz.radius_packets -max_total_time=60``;
every libFuzzer flag works. ``make fuzz`` runs each harness for a bounded time and
``tests/functional/test_fuzz.py`` for a few seconds inside the normal suite.
"""
