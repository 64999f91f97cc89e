"""The audit log: who did what, when, from where — never a secret."""
