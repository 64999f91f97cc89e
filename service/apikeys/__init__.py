"""Clients (service accounts), their API keys, and the exchange of an API key for a
short-lived access token (DESIGN §3, §4, §7)."""
