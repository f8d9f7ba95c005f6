"""Cloud Function entry points, one module per function. Each is thin: parse, authenticate,
call a service, render."""
