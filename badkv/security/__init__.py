"""The cluster's boundary and its tenants: certificates and TLS, signed peer calls, tenant tokens and quotas.

Nothing here serves HTTP: ``badkv/http`` checks requests with these pieces, and
``badkv/cluster`` signs and verifies what it sends to its peers.
"""
