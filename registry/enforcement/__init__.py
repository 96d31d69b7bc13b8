"""Enforcement of registered rights: reports of suspected infringements (and, next,
the officers' casework)."""
