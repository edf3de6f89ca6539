"""What JupyterHub loads for the enclave, and the `enclave` admin command."""
