"""The only modules that talk to databases. Each store takes its client in ``__init__``."""
