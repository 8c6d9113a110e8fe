"""The reference of `make bench`: Django + DRF without middleware, an earn in hand-written SQL."""
