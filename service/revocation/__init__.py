"""Revocation: the denylist of access tokens (``jti``), sessions (``sid``) and subjects
(``sub`` issued before an instant), its feed for verifiers, RFC 7009 revocation and
RFC 7662 introspection.

PostgreSQL holds the truth; Redis holds a mirror for fast checks. Losing Redis loses
no revocation: checks fall back to the database (DESIGN §2, §4).
"""
