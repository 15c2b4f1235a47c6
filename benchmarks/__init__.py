"""Benchmarks: each `bench_*.py` module exposes `run(urls) -> list[dict]`."""
