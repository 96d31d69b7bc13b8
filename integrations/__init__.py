"""Outbound adapters: the national portal client, EPCIS push, the outbox and its worker."""
