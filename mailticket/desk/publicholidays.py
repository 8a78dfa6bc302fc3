"""Public holidays computed for any year (the ``holidays`` library), for the business-hours clocks.

``[sla] holidays_country = "SE"`` (an ISO 3166 code) and optionally ``holidays_subdivision``
give the days the clocks stand still, with no list to keep up to date: Easter, Ascension and
Midsummer move every year, and a typed list runs out. Besides the public holidays, the days a
country takes off in practice though no law names them (the library's ``de_facto`` category:
in Sweden Midsummer Eve, Christmas Eve and New Year's Eve) count too. The typed
``[sla.business_hours] holidays`` list stays for the company's own days.
"""

from __future__ import annotations

from datetime import date

import holidays

from ..errors import ConfigError

CATEGORIES = ("public", "de_facto")  # the days off; "bank", "optional" and the like are not


class PublicHolidays:
    """``day in calendar``: a public or de-facto holiday of the country (years computed on demand)."""

    def __init__(self, country: str, subdivision: str | None = None):
        cls = holidays.country_holidays(country, subdiv=subdivision).__class__
        wanted = tuple(c for c in CATEGORIES if c in getattr(cls, "supported_categories", ("public",)))
        self.country, self.subdivision = country, subdivision
        self._days = holidays.country_holidays(country, subdiv=subdivision, categories=wanted)

    def __contains__(self, day: date) -> bool:
        return day in self._days

    def name(self, day: date) -> str | None:
        """The holiday's name (for logs and tests), or None."""
        return self._days.get(day)

    def __repr__(self) -> str:
        return f"PublicHolidays({self.country!r}, {self.subdivision!r})"


def load_public_holidays(data: dict, file: str) -> PublicHolidays | None:
    """``holidays_country`` and ``holidays_subdivision`` of the [sla] table, checked; None when unset."""
    country = data.get("holidays_country")
    subdivision = data.get("holidays_subdivision")
    if country is None:
        if subdivision is not None:
            raise ConfigError("needs holidays_country as well", file, "sla.holidays_subdivision")
        return None
    supported = holidays.list_supported_countries()
    if not isinstance(country, str) or country.upper() not in supported:
        raise ConfigError(f"{country!r} is not a country the holidays library knows; write its ISO 3166 code, "
                          "e.g. \"SE\", \"NO\", \"DE\", \"GB\"", file, "sla.holidays_country")
    country = country.upper()
    if subdivision is not None:
        valid = supported[country]
        if not isinstance(subdivision, str) or subdivision.upper() not in {s.upper() for s in valid}:
            listed = ", ".join(valid) if valid else f"none: {country} has no subdivisions"
            raise ConfigError(f"{subdivision!r} is not a subdivision of {country} (valid: {listed})",
                              file, "sla.holidays_subdivision")
        subdivision = next(s for s in valid if s.upper() == subdivision.upper())
    return PublicHolidays(country, subdivision)
