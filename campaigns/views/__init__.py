"""Marketing's and customer service's pages over the programme's rules, one module per area.

Each module's views are thin: they call campaigns' services and selectors; campaigns/urls.py
names their routes.
"""
