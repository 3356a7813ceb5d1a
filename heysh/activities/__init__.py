"""Activity classes holding their store clients; one dataclass in, one dataclass out."""
