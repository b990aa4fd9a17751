"""SHARE amounts as people type them ("150", "0.5") and as the chain counts them (wei)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sharedllm.errors import ConfigError

DECIMALS = 18
WEI_PER_SHARE = 10**DECIMALS


def parse_share(text: str, field: str = "amount") -> int:
    """Decimal SHARE to wei; refuses negatives, more than 18 decimals, and non-numbers."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ConfigError(f"{field}: {text!r} is not a SHARE amount", field=field) from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{field}: must be a non-negative number of SHARE", field=field)
    wei = value * WEI_PER_SHARE
    if wei != wei.to_integral_value():
        raise ConfigError(f"{field}: at most {DECIMALS} decimal places", field=field)
    return int(wei)


def parse_positive_share(text: str, field: str = "amount") -> int:
    wei = parse_share(text, field)
    if wei == 0:
        raise ConfigError(f"{field}: must be greater than zero", field=field)
    return wei


def format_share(wei: int) -> str:
    """Wei as a decimal SHARE string without trailing zeros: 1500000000000000000 -> "1.5"."""
    whole, frac = divmod(abs(wei), WEI_PER_SHARE)
    sign = "-" if wei < 0 else ""
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(DECIMALS, '0').rstrip('0')}"
