"""badkv: a multi-tenant, replicated key-value store with a REST interface."""

__version__ = "0.1.0"
