"""The package index notebook containers install from (served on the host, see hub.packages.index)."""
