"""Performance benchmarks of reflib (SPEC §5); docs/benchmarks.md says how to run them."""
