"""Outbound webhooks to integrators (API.md, Webhooks to integrators; docs/webhooks.md)."""
