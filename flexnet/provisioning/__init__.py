"""Provisioning: onboarding, issuance and replacement, security letters and mail runs."""
