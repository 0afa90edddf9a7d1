"""Deployment pipeline: requests, approvals, windows, deployers, verification, rollback.

Kept empty of imports on purpose: the webhook function imports ``requests`` from here and must
not pay for the deployers or the plugin.
"""
