"""The smallest amount a card payment may be, per currency, in minor units (Stripe's published
minimum charge amounts). A booking whose total is above 0 and below it could never be paid."""

from __future__ import annotations

DEFAULT_MINIMUM = 50  # for a currency not listed: the common 0.50
MINIMUM_CHARGE = {
    "AED": 200,
    "BGN": 100,
    "CZK": 1500,
    "DKK": 250,
    "GBP": 30,
    "HKD": 400,
    "HUF": 17500,
    "JPY": 50,
    "MXN": 1000,
    "MYR": 200,
    "NOK": 300,
    "PLN": 200,
    "RON": 200,
    "SEK": 300,
    "THB": 1000,
}


def minimum_charge(currency: str) -> int:
    return MINIMUM_CHARGE.get(currency.upper(), DEFAULT_MINIMUM)
