"""The daily cycle in America/Sao_Paulo time: how busy each hour is, and what counts as night.

Brazil has had no daylight saving time since 2019, but the offset is still read from the zone
database for the instants at hand, so a simulated 2018 summer comes out right too.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from streamguard.generate.defaults import LOCAL_TIME_ZONE

LOCAL_TZ = ZoneInfo(LOCAL_TIME_ZONE)
#: Night for the NIGHT_SPENDING rule: from 22:00 to 06:00 local time.
NIGHT_START_HOUR = 22
NIGHT_END_HOUR = 6
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# Relative activity per local hour (card and PIX volumes peak at lunch and early evening).
_RAW = np.array(
    [
        0.25,
        0.15,
        0.10,
        0.08,
        0.08,
        0.15,
        0.35,
        0.60,
        0.90,
        1.20,
        1.40,
        1.50,
        1.60,
        1.50,
        1.40,
        1.40,
        1.40,
        1.50,
        1.60,
        1.60,
        1.40,
        1.10,
        0.80,
        0.50,
    ]
)
#: Activity per local hour, normalised so that the mean over a day is 1.
HOURLY_ACTIVITY: np.ndarray = _RAW / _RAW.mean()
PEAK_ACTIVITY = float(HOURLY_ACTIVITY.max())


def utc_offset_ms(ts_ms: int) -> int:
    """The America/Sao_Paulo offset from UTC at `ts_ms`, in ms (-3 h nowadays)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).astimezone(LOCAL_TZ)
    offset = moment.utcoffset() or timedelta(0)
    return int(offset.total_seconds() * 1000)


def local_hours(ts_ms: np.ndarray) -> np.ndarray:
    """The local hour (0-23) of each epoch-ms instant."""
    if len(ts_ms) == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = utc_offset_ms(int(ts_ms[0])), utc_offset_ms(int(ts_ms[-1]))
    if first == last:
        return ((ts_ms + first) // HOUR_MS) % 24
    offsets = np.array([utc_offset_ms(int(t)) for t in ts_ms], dtype=np.int64)
    return ((ts_ms + offsets) // HOUR_MS) % 24


def local_hour(ts_ms: int) -> int:
    """The local hour (0-23) of one instant."""
    return int(((ts_ms + utc_offset_ms(ts_ms)) // HOUR_MS) % 24)


def is_night_hour(hours: np.ndarray) -> np.ndarray:
    """True where the local hour is within 22:00-06:00."""
    return (hours >= NIGHT_START_HOUR) | (hours < NIGHT_END_HOUR)


def is_night(ts_ms: int) -> bool:
    """True when the instant falls within 22:00-06:00 local time."""
    hour = local_hour(ts_ms)
    return hour >= NIGHT_START_HOUR or hour < NIGHT_END_HOUR


def night_left_ms(ts_ms: int) -> int:
    """How long the night containing `ts_ms` still lasts (0 by day)."""
    if not is_night(ts_ms):
        return 0
    local = ts_ms + utc_offset_ms(ts_ms)
    into_day = local % DAY_MS
    end = NIGHT_END_HOUR * HOUR_MS
    return end - into_day if into_day < end else DAY_MS - into_day + end


def activity(ts_ms: int) -> float:
    """The relative activity at one instant, interpolated between hour centres (mean 1)."""
    local = ts_ms + utc_offset_ms(ts_ms)
    hours = (local % DAY_MS) / HOUR_MS - 0.5
    low = int(np.floor(hours)) % 24
    frac = hours - np.floor(hours)
    return float(HOURLY_ACTIVITY[low] * (1 - frac) + HOURLY_ACTIVITY[(low + 1) % 24] * frac)


def last_night_moment(ts_ms: int, hour: int = 23, minute: int = 30) -> int:
    """The most recent local `hour:minute` at night at or before `ts_ms` (for night attacks)."""
    local = datetime.fromtimestamp(ts_ms / 1000, tz=LOCAL_TZ)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate > local:
        candidate -= timedelta(days=1)
    return int(candidate.timestamp() * 1000)
