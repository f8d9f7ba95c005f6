"""Cross-cutting concerns: settings, errors, authentication, logging, HTTP plumbing."""
