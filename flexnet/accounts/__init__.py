"""Practices, their users (members, staff, third parties, the practice access), identifiers,
service requests, self-lock and VPN sessions."""
