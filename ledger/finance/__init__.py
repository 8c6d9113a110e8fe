"""Finance's reports on the points ledger, one module per concept (DESIGN §2).

- ``moments``: what "as of" a date or a date and time means (the end of that day or second, in
  the programme's time zone).
- ``values``: the money value of one point, with its dated changes.
- ``liability``: outstanding points as of any moment, by expiry month, by tier and per member,
  reconstructed exactly from the entries and the lot consumptions.
- ``rollforward``: opening + movements = closing, per period, in points and money.

Everything here reads; nothing writes points. The reports read only points and tiers.
"""
