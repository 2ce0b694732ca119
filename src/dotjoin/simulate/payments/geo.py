"""The simulated world's geography: 42 real cities, their currencies, distances and local hours.

Exchange rates are fixed, round, illustrative figures (units per US dollar), not market data; minor
units are ISO 4217's (JPY, KRW and CLP have none). Local hours are *solar* hours (UTC plus longitude/15):
close to clock time, and they need no time-zone table.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

EARTH_KM = 6371.0088


class City(NamedTuple):
    name: str
    country: str  # ISO 3166-1 alpha-2
    currency: str  # ISO 4217
    latitude: float
    longitude: float
    population_m: float  # metro population, millions: how many customers and merchants live there


CITIES: tuple[City, ...] = (
    City("New York", "US", "USD", 40.7128, -74.0060, 19.5),
    City("Los Angeles", "US", "USD", 34.0522, -118.2437, 13.0),
    City("Chicago", "US", "USD", 41.8781, -87.6298, 9.5),
    City("Denver", "US", "USD", 39.7392, -104.9903, 2.9),
    City("Toronto", "CA", "CAD", 43.6532, -79.3832, 6.2),
    City("Vancouver", "CA", "CAD", 49.2827, -123.1207, 2.6),
    City("Mexico City", "MX", "MXN", 19.4326, -99.1332, 21.8),
    City("Bogota", "CO", "COP", 4.7110, -74.0721, 11.3),
    City("Lima", "PE", "PEN", -12.0464, -77.0428, 11.0),
    City("Santiago", "CL", "CLP", -33.4489, -70.6693, 6.9),
    City("Sao Paulo", "BR", "BRL", -23.5505, -46.6333, 22.4),
    City("Rio de Janeiro", "BR", "BRL", -22.9068, -43.1729, 13.5),
    City("Buenos Aires", "AR", "ARS", -34.6037, -58.3816, 15.4),
    City("London", "GB", "GBP", 51.5074, -0.1278, 14.8),
    City("Lisbon", "PT", "EUR", 38.7223, -9.1393, 2.9),
    City("Madrid", "ES", "EUR", 40.4168, -3.7038, 6.7),
    City("Paris", "FR", "EUR", 48.8566, 2.3522, 11.1),
    City("Amsterdam", "NL", "EUR", 52.3676, 4.9041, 2.5),
    City("Berlin", "DE", "EUR", 52.5200, 13.4050, 4.7),
    City("Rome", "IT", "EUR", 41.9028, 12.4964, 4.3),
    City("Zurich", "CH", "CHF", 47.3769, 8.5417, 1.4),
    City("Stockholm", "SE", "SEK", 59.3293, 18.0686, 2.4),
    City("Warsaw", "PL", "PLN", 52.2297, 21.0122, 3.1),
    City("Istanbul", "TR", "TRY", 41.0082, 28.9784, 15.6),
    City("Cairo", "EG", "EGP", 30.0444, 31.2357, 21.3),
    City("Lagos", "NG", "NGN", 6.5244, 3.3792, 15.4),
    City("Nairobi", "KE", "KES", -1.2921, 36.8219, 4.9),
    City("Johannesburg", "ZA", "ZAR", -26.2041, 28.0473, 6.1),
    City("Riyadh", "SA", "SAR", 24.7136, 46.6753, 7.7),
    City("Dubai", "AE", "AED", 25.2048, 55.2708, 3.5),
    City("Mumbai", "IN", "INR", 19.0760, 72.8777, 21.0),
    City("Delhi", "IN", "INR", 28.7041, 77.1025, 32.0),
    City("Bangalore", "IN", "INR", 12.9716, 77.5946, 13.0),
    City("Bangkok", "TH", "THB", 13.7563, 100.5018, 11.0),
    City("Jakarta", "ID", "IDR", -6.2088, 106.8456, 11.0),
    City("Singapore", "SG", "SGD", 1.3521, 103.8198, 6.0),
    City("Hong Kong", "HK", "HKD", 22.3193, 114.1694, 7.5),
    City("Shanghai", "CN", "CNY", 31.2304, 121.4737, 29.0),
    City("Manila", "PH", "PHP", 14.5995, 120.9842, 14.4),
    City("Seoul", "KR", "KRW", 37.5665, 126.9780, 10.0),
    City("Tokyo", "JP", "JPY", 35.6762, 139.6503, 37.0),
    City("Sydney", "AU", "AUD", -33.8688, 151.2093, 5.3),
    City("Auckland", "NZ", "NZD", -36.8485, 174.7633, 1.7),
)

#: currency -> (units per US dollar, decimals); fixed illustrative rates.
CURRENCIES: dict[str, tuple[float, int]] = {
    "USD": (1.0, 2),
    "CAD": (1.36, 2),
    "MXN": (17.0, 2),
    "COP": (4000.0, 2),
    "PEN": (3.75, 2),
    "CLP": (950.0, 0),
    "BRL": (5.0, 2),
    "ARS": (900.0, 2),
    "GBP": (0.79, 2),
    "EUR": (0.92, 2),
    "CHF": (0.88, 2),
    "SEK": (10.5, 2),
    "PLN": (4.0, 2),
    "TRY": (32.0, 2),
    "EGP": (48.0, 2),
    "NGN": (1500.0, 2),
    "KES": (130.0, 2),
    "ZAR": (18.5, 2),
    "SAR": (3.75, 2),
    "AED": (3.67, 2),
    "INR": (83.0, 2),
    "THB": (36.0, 2),
    "IDR": (16000.0, 2),
    "SGD": (1.34, 2),
    "HKD": (7.8, 2),
    "CNY": (7.2, 2),
    "PHP": (57.0, 2),
    "KRW": (1350.0, 0),
    "JPY": (150.0, 0),
    "AUD": (1.52, 2),
    "NZD": (1.65, 2),
}


def to_usd(amount: float, currency: str) -> float:
    """``amount`` in US dollars at the simulator's fixed rate.

    >>> to_usd(1500, "JPY")
    10.0
    """
    return amount / CURRENCIES[currency][0]


def round_unit(currency: str) -> float:
    """The step of a "round" amount in ``currency``: 1 for USD or EUR, 100 for JPY or INR, 10,000 for IDR.

    >>> round_unit("EUR"), round_unit("JPY"), round_unit("IDR")
    (1.0, 100.0, 10000.0)
    """
    return float(10 ** round(np.log10(CURRENCIES[currency][0])))


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distances in km, element-wise.

    >>> round(float(haversine_km(52.52, 13.405, 48.8566, 2.3522)))  # Berlin - Paris
    877
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_KM * np.arcsin(np.minimum(1.0, np.sqrt(a))), dtype=np.float64)


def solar_hour(t_ms: npt.ArrayLike, longitude: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Local solar hour (0 <= h < 24) at epoch milliseconds ``t_ms`` and ``longitude``.

    >>> float(solar_hour(0, 15.0))  # 1970-01-01 00:00 UTC is 01:00 solar time at 15 degrees east
    1.0
    """
    hours = np.asarray(t_ms, dtype=np.float64) / 3_600_000 + np.asarray(longitude, dtype=np.float64) / 15.0
    return np.asarray(np.mod(hours, 24.0), dtype=np.float64)


def city_distances() -> npt.NDArray[np.float64]:
    """The matrix of distances between the cities of :data:`CITIES`, km."""
    lat = np.array([c.latitude for c in CITIES])
    lon = np.array([c.longitude for c in CITIES])
    return haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
