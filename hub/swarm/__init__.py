"""Notebook servers across a Docker Swarm (docs/scale-out.md): which nodes may run them."""
