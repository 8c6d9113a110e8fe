"""The channel REST API (v1): thin DRF views over the apps' services."""
