"""Delegation between services: the RFC 8693 token-exchange grant."""
