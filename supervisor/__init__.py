"""The supervisor process: CLI, config, preflight, and the children it starts and watches."""
