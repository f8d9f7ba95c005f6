"""Promo codes: the organiser's codes (codes.py) and the uses bookings claim (uses.py)."""
