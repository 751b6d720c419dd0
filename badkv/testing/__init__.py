"""Test support shipped with badkv: fault injection and history checking."""
