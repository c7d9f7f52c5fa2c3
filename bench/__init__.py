"""Benchmarks: ``scripts/bench <name>`` runs one and prints a markdown table (see README)."""
