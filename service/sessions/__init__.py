"""Sessions: users and their passwords, password login, and refresh-token families
that rotate on every use and are revoked as a whole when a spent token comes back
(DESIGN §3, §4)."""
