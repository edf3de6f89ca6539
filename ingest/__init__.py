"""Bringing data into a project: `enclave data import` and what it relies on.

keys (per-project secret), pseudonym (keyed pseudonyms), risk (k-anonymity report), fingerprints
(row hashes for the egress checks: `find_input_rows`), importer (the streaming import), cli.
"""
