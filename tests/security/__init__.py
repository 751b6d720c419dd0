"""Tests for badkv/security/ (a package, so its test modules may share names with real-process tests)."""
