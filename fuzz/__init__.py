"""Fuzzing: atheris targets for the parsers (`fuzz_webhook`, `fuzz_bodies`) and the schemathesis hooks
the stateful OpenAPI run loads (`schemathesis_hooks`)."""
