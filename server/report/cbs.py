"""Heerlen's 57 buurten from the CBS 'Kerncijfers wijken en buurten' 2016-2020 file (public register statistics).

Read by the report's fairness audit (group attributes per area) and by the synthetic generator (its calibration).

Populations are the CBS figures exactly (2016-2020; earlier years use 2016 and later years 2020).
Register attributes and the calibrated crime rates are CBS values where CBS published them. Missing
values (suppressed for small buurten, or not published for a year) are imputed, in this order:
  1. the buurt's own value in the nearest year that has one (earlier year first on ties), so crime
     rates (2016-2018 only) use the latest available year for later years;
  2. the wijk's value in the same year, else the wijk's nearest year;
  3. the gemeente's value in the same year, else its nearest year.
Shares and per-1,000 figures are imputed as rates (never as counts). In the source file the 2016 rows
of Beitel carry the codes of their neighbours (BU09174100, WK091741): codes are re-derived by name
from the latest year.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from federation.errors import ConfigError

CBS_YEARS: tuple[int, ...] = (2016, 2017, 2018, 2019, 2020)
# Register attributes every city carries (canonical names; profiles map them to their own columns).
ATTRIBUTES: tuple[str, ...] = (
    "share_0_15",
    "share_65_plus",
    "household_size",
    "social_housing_share",
    "income_k",
    "low_income_share",
    "benefits_per_1000",
    "youth_care_pct",
    "wmo_per_1000",
    "protected_share",
)
# Attributes read only by the report's fairness audit (never generated, never features).
AUDIT_ATTRIBUTES: tuple[str, ...] = ("non_western_share",)


@dataclass
class AreaSet:
    """Areas of one city; every array has one row per area and one column per year in `years`."""

    prefix: str
    codes: list[str]
    names: list[str]
    years: list[int]
    population: np.ndarray
    attributes: dict[str, np.ndarray]
    calibrated: dict[str, np.ndarray] = field(default_factory=dict)  # crime per 1,000 per year (CBS)

    @property
    def count(self) -> int:
        return len(self.codes)

    @property
    def keys(self) -> list[str]:
        """Federation keys: the city prefix plus the native code."""
        return [self.prefix + code for code in self.codes]

    def year_columns(self, years: np.ndarray) -> np.ndarray:
        """Column index of each given calendar year (years outside the set use the nearest one)."""
        known = np.asarray(self.years)
        return np.abs(np.asarray(years)[:, None] - known[None, :]).argmin(axis=1)

    def by_month(self, values: np.ndarray, month_years: np.ndarray) -> np.ndarray:
        """(A, Y) yearly values spread to (A, T) months."""
        return values[:, self.year_columns(month_years)].astype(np.float64)

    def static(self, name: str) -> np.ndarray:
        """(A,) mean over the years of a register attribute or CBS rate (the area's static level)."""
        if name == "population":
            return self.population.mean(axis=1).astype(np.float64)
        if name in self.attributes:
            return self.attributes[name].mean(axis=1)
        if name in self.calibrated:
            return self.calibrated[name].mean(axis=1)
        if name == "crime_per_1000" and self.calibrated:
            return sum(v.mean(axis=1) for v in self.calibrated.values())
        raise ConfigError(f"latent covariate '{name}' is not an attribute of these areas")


_POP = "Bevolking_Aantal_inwoners"
_COLUMNS = {
    "age_0_15": "Bevolking_Leeftijdsgroepen_0_tot_15_jaar",
    "age_65": "Bevolking_Leeftijdsgroepen_65_jaar_of_ouder",
    "hh": "Bevolking_Particuliere_huishoudens_Gemiddelde_huishoudensgrootte",
    "corp": "Wonen_Woningen_naar_eigendom_Huurwoningen_In_bezit_woningcorporatie",
    "income": "Inkomen_Inkomen_van_personen_Gemiddeld_inkomen_per_inwoner",
    "low": "Inkomen_Inkomen_van_huishoudens_Huishoudens_met_een_laag_inkomen",
    "bijstand": "Sociale_zekerheid_Personen_per_soort_uitkering_Bijstand",
    "youth": "Zorg_Percentage_jongeren_met_jeugdzorg",
    "wmo": "Zorg_Wmo_cliënten_relatief",
    "mig_w": "Bevolking_Personen_met_een_migratieachtergrond_Westers_totaal",
    "mig_nw": "Bevolking_Personen_met_een_migratieachtergrond_Niet_westers_Niet_westers_totaal",
    "burglary": "Criminaliteit_Totaal_diefstal_uit_woning_schuur_ed",
    "vandalism": "Criminaliteit_Vernieling_misdrijf_tegen_openbare_orde",
    "violence": "Criminaliteit_Gewelds__en_seksuele_misdrijven",
}
CRIME: tuple[str, ...] = ("burglary", "vandalism", "violence")


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(
            f"CBS file '{path}' does not exist: pass --cbs with the path of heerlen_cbs_kwb_2016_2020.csv"
        )
    frame = pd.read_csv(path)
    needed = ["jaar", "niveau", "code_derived", "Wijk_Buurt", _POP, *_COLUMNS.values()]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ConfigError(f"CBS file '{path}': column '{missing[0]}' is missing")
    frame["name"] = frame["Wijk_Buurt"].str.replace(r"^Wijk \d+ ", "", regex=True)
    for level in ("buurt", "wijk"):
        rows = frame["niveau"] == level
        latest = frame[rows & (frame["jaar"] == frame.loc[rows, "jaar"].max())]
        by_name = dict(zip(latest["name"], latest["code_derived"]))
        frame.loc[rows, "code_derived"] = frame.loc[rows, "name"].map(by_name).fillna(frame.loc[rows, "code_derived"])
    return frame


def _rates(frame: pd.DataFrame) -> pd.DataFrame:
    """CBS counts and percentages turned into the register's shares and rates (per row)."""
    pop = frame[_POP].where(frame[_POP] > 0)
    c = {k: frame[v] for k, v in _COLUMNS.items()}
    out = pd.DataFrame(
        {
            "share_0_15": c["age_0_15"] / pop,
            "share_65_plus": c["age_65"] / pop,
            "household_size": c["hh"],
            "social_housing_share": c["corp"] / 100.0,
            "income_k": c["income"],
            "low_income_share": c["low"] / 100.0,
            "benefits_per_1000": c["bijstand"] / pop * 1000.0,
            "youth_care_pct": c["youth"],
            "wmo_per_1000": c["wmo"],
            "protected_share": (c["mig_w"] + c["mig_nw"]) / pop,
            "non_western_share": c["mig_nw"] / pop,
            **{k: c[k] for k in CRIME},
        }
    )
    out.index = pd.MultiIndex.from_arrays([frame["code_derived"], frame["jaar"]])
    return out


def _nearest_year(values: np.ndarray) -> np.ndarray:
    """Fill each row's NaNs with that row's value in the nearest year (earlier first on ties)."""
    out = values.copy()
    years = np.arange(values.shape[1])
    for j in years:
        order = sorted(years, key=lambda k: (abs(k - j), k))
        for k in order[1:]:
            gap = np.isnan(out[:, j])
            out[gap, j] = values[gap, k]
    return out


def load_heerlen(path: Path, years: list[int], prefix: str = "") -> AreaSet:
    """The buurten with CBS populations and imputed register attributes for `years`."""
    frame = _read(path)
    rates = _rates(frame)
    buurten = frame[(frame["niveau"] == "buurt") & (frame["jaar"] == frame["jaar"].max())]
    codes = sorted(buurten["code_derived"])
    names = dict(zip(buurten["code_derived"], buurten["name"]))
    cbs_years = sorted(int(y) for y in frame["jaar"].unique())
    gemeente = frame.loc[frame["niveau"] == "gemeente", "code_derived"].iloc[0]
    wijk_of = {code: "WK" + code[2:8] for code in codes}

    def matrix(column: str, keys: list[str]) -> np.ndarray:
        table = rates[column].unstack("jaar").reindex(index=keys, columns=cbs_years)
        return table.to_numpy(dtype=np.float64)

    pops = frame[frame["niveau"] == "buurt"].set_index(["code_derived", "jaar"])[_POP].unstack("jaar")
    pops = pops.reindex(index=codes, columns=cbs_years)
    if pops.isna().any().any():
        raise ConfigError(f"CBS file '{path}': column '{_POP}' is missing for some buurt and year")
    columns = [np.abs(np.asarray(cbs_years) - y).argmin() for y in years]
    filled: dict[str, np.ndarray] = {}
    for name in (*ATTRIBUTES, *AUDIT_ATTRIBUTES, *CRIME):
        own = _nearest_year(matrix(name, codes))
        wijk = _nearest_year(matrix(name, [wijk_of[c] for c in codes]))
        gem = _nearest_year(matrix(name, [gemeente]))
        own = np.where(np.isnan(own), wijk, own)
        own = np.where(np.isnan(own), gem, own)
        filled[name] = own[:, columns]
    return AreaSet(
        prefix=prefix,
        codes=codes,
        names=[names[c] for c in codes],
        years=list(years),
        population=pops.to_numpy(dtype=np.int64)[:, columns],
        attributes={k: filled[k] for k in (*ATTRIBUTES, *AUDIT_ATTRIBUTES)},
        calibrated={k: filled[k] for k in CRIME},
    )
