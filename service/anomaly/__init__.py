"""Anomaly signals on logins and API-key use: a new network (/24 or /48), a new
device family, an impossible rate of network changes; bounded history per user and
per key; the deployment's policy (log, step_up, deny) applied to them (issue 9)."""
