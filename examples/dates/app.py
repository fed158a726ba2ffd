"""dates: free-form date parsing and calendar arithmetic, with python-dateutil
(a pure-Python dependency declared in pyproject.toml and bundled by `pdk build`)."""

from __future__ import annotations

from dataclasses import dataclass

from dateutil import parser
from dateutil.relativedelta import relativedelta

from pdk import ErrorCode, Plugin, ToolError

plugin = Plugin()


@dataclass
class Shifted:
    date: str
    weekday: str


@plugin.tool
def shift_date(date: str, months: int = 0, days: int = 0) -> Shifted:
    """Parse a free-form date ("March 3 2024", "2024-03-03") and move it by calendar months and days."""
    try:
        parsed = parser.parse(date)
    except (ValueError, OverflowError) as exc:
        raise ToolError(f"not a date: {date!r} ({exc})", code=ErrorCode.INVALID_INPUT) from None
    moved = parsed + relativedelta(months=months, days=days)
    return Shifted(date=moved.date().isoformat(), weekday=moved.strftime("%A"))
