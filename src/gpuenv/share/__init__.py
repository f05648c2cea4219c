"""A shared GPU server: who holds which GPU (holders.py), the environments' claims on GPUs (claims.py),
which GPUs are free (free.py), and taking free ones so that two `up`s never take the same (arbiter.py)."""
