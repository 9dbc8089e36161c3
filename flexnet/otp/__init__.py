"""The possession factor: Yubico OTP (local or remote), OATH HOTP/TOTP, secrets at rest.

Decoding is pure (``modhex``, ``yubico``); verification advances replay counters with
one conditional UPDATE whose row count decides (``verify``, ``oath``).
"""
