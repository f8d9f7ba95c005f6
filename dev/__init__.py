"""Local development: the gateway that serves every function on one port, and the stack runner."""
