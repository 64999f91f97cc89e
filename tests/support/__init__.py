"""Test support: real databases, real Redis, real server processes."""
