"""Small node directories of the transfer cities in their own formats (docs/raw-records.md, "Transfer
cities"): Genk's UTF-8 with BOM and decimal comma, Sant Boi's Latin-1 with accented categories and
percentages, Piraeus's tab-separated files and Parquet register. Two areas (one of them tiny, hence
suppressed), two months; expected values are in the comments of each writer.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.support.contract_fixtures import write_csv


def _areas(node: Path, prefix: str, big: str, small: str) -> None:
    write_csv(pd.DataFrame({"area_code": [prefix + big, prefix + small, prefix + big, prefix + small],
                            "area_name": ["Groot", "Klein", "Groot", "Klein"], "year": ["2019", "2019", "2020", "2020"],
                            "population": ["2000", "40", "2500", "40"]}), node / "public" / "areas.csv")


def write_genk(node: Path) -> Path:
    """Genk: BE-GNK:71016A012 has 2,000 residents (2019) and 2,500 (2020); BE-GNK:71016B001 has 40.
    2019-12: 1 burglary, 1 leefloon opened 2019-12-02 (open), 2 reports (1 youth); survey mean sum 0.1.
    2020-01: 1 drugs case; income 23,500 EUR -> 23.5 thousand."""
    big, small = "71016A012", "71016B001"
    _areas(node, "BE-GNK:", big, small)
    fmt = {"encoding": "utf-8-sig", "delimiter": ";"}
    raw = node / "raw"
    register = []
    for code in (big, small):
        for year, inw, income in (("2019", "2000" if code == big else "40", "23500"),
                                  ("2020", "2500" if code == big else "40", "24000,5")):
            register.append({"sectorcode": code, "jaar": year, "inwoners": inw, "aandeel_0_14": "0,16",
                             "aandeel_65_plus": "0,21", "gemiddelde_gezinsgrootte": "2,3",
                             "aandeel_sociale_huurwoningen": "0,18", "netto_belastbaar_inkomen_per_inwoner": income,
                             "aandeel_lage_inkomens": "0,14", "leefloners_per_1000": "9,5", "jeugdhulp_pct": "7,5",
                             "thuiszorg_per_1000": "41,0", "aandeel_buitenlandse_herkomst": "0,35"})
    write_csv(pd.DataFrame(register), raw / "sectoren_jaarcijfers.csv", **fmt)
    write_csv(pd.DataFrame([
        {"pv_nummer": "LI.43.L3.000001/2019", "datum_feiten": "03/12/2019 21:10", "sectorcode": big,
         "misdrijfcategorie": "woninginbraak"},
        {"pv_nummer": "LI.43.L3.000002/2020", "datum_feiten": "15/01/2020 02:30", "sectorcode": big,
         "misdrijfcategorie": "drugsdelict"},
        {"pv_nummer": "LI.43.L3.000003/2020", "datum_feiten": "20/01/2020 12:00", "sectorcode": small,
         "misdrijfcategorie": "overlast"},
    ]), raw / "pv_registraties.csv", **fmt)
    write_csv(pd.DataFrame([
        {"dossiernummer": "OCMW-2019-00001", "gezin_pseudoniem": "G1", "sectorcode": big, "steunvorm": "leefloon",
         "begindatum": "02/12/2019", "einddatum": ""},
        {"dossiernummer": "OCMW-2018-00007", "gezin_pseudoniem": "G2", "sectorcode": big,
         "steunvorm": "schuldbemiddeling", "begindatum": "01/06/2018", "einddatum": "31/12/2019"},
    ]), raw / "ocmw_dossiers.csv", **fmt)
    write_csv(pd.DataFrame([
        {"meldingsnummer": "MLD-2019-000001", "tijdstip_melding": "05/12/2019 09:00", "sectorcode": big,
         "soort": "sluikstort"},
        {"meldingsnummer": "MLD-2019-000002", "tijdstip_melding": "28/12/2019 23:00", "sectorcode": big,
         "soort": "jongerenoverlast"},
        # in the suppressed sector, so that every month of the window holds reports (periods.from)
        {"meldingsnummer": "MLD-2020-000001", "tijdstip_melding": "08/01/2020 10:00", "sectorcode": small,
         "soort": "sluikstort"},
    ]), raw / "meldingen_publieke_ruimte.csv", **fmt)
    write_csv(pd.DataFrame([
        {"respondentnummer": "R1", "sectorcode": big, "bevragingsmaand": "12/2019", "score_woningbestand": "0,1",
         "score_fysieke_omgeving": "0,05", "score_voorzieningen": "-0,05", "score_sociale_cohesie": "0,0",
         "score_overlast_onveiligheid": "0,0", "voelt_zich_onveilig": "nee"},
        {"respondentnummer": "R2", "sectorcode": big, "bevragingsmaand": "01/2020", "score_woningbestand": "0,0",
         "score_fysieke_omgeving": "0,0", "score_voorzieningen": "0,0", "score_sociale_cohesie": "0,0",
         "score_overlast_onveiligheid": "-0,2", "voelt_zich_onveilig": "ja"},
    ]), raw / "leefbaarheidsbevraging.csv", **fmt)
    return node


def write_sant_boi(node: Path) -> Path:
    """Sant Boi: ES-SBL:0820003012 (2,000 / 2,500 residents), ES-SBL:0820001001 (40).
    Register percentages: pct_0_14 = 15.5 -> share 0.155. 2019-12: one social-services file opened
    2019-12-10 with ambitos deudas/salud_mental, 12 h, open; one 'molestias_jóvenes' report; one
    'intermediación_deudas' file open; survey sum -0.1 -> 4.00."""
    big, small = "0820003012", "0820001001"
    _areas(node, "ES-SBL:", big, small)
    fmt = {"encoding": "latin-1", "delimiter": ";"}
    raw = node / "raw"
    padron = []
    for code in (big, small):
        for year in ("2019", "2020"):
            padron.append({"seccion_censal": code, "anio": year,
                           "poblacion": ("2000" if year == "2019" else "2500") if code == big else "40",
                           "pct_0_14": "15.5", "pct_65_mas": "19.0", "tamano_medio_hogar": "2.6",
                           "pct_vivienda_social": "3.0", "renta_media_persona_miles_eur": "14.2",
                           "pct_hogares_renta_baja": "21.0", "perceptores_rgc_por_1000": "11.0",
                           "pct_menores_atencion_infancia": "6.0", "dependencia_por_1000": "30.0",
                           "pct_nacionalidad_extranjera": "12.0"})
    write_csv(pd.DataFrame(padron), raw / "padron_secciones.csv", **fmt)
    write_csv(pd.DataFrame([
        {"num_expediente": "PRE-2019-00001", "unidad_convivencia_seudonimo": "U1", "seccion_censal": big,
         "prestacion": "intermediación_deudas", "fecha_alta": "20190501", "fecha_baja": ""},
        {"num_expediente": "PRE-2020-00001", "unidad_convivencia_seudonimo": "U2", "seccion_censal": big,
         "prestacion": "renta_garantizada", "fecha_alta": "20200107", "fecha_baja": "20200130"},
    ]), raw / "prestaciones.csv", **fmt)
    write_csv(pd.DataFrame([
        {"id_incidencia": "INC-2019-000001", "fecha_hora": "20191204 18:30", "seccion_censal": big,
         "tipo": "molestias_jóvenes"},
        {"id_incidencia": "INC-2020-000001", "fecha_hora": "20200111 08:15", "seccion_censal": big,
         "tipo": "alumbrado_público"},
    ]), raw / "incidencias_via_publica.csv", **fmt)
    write_csv(pd.DataFrame([
        {"num_expediente": "SSB-2019-00001", "unidad_convivencia_seudonimo": "U1", "seccion_censal": big,
         "fecha_apertura": "20191210", "fecha_cierre": "", "ambitos": "deudas/salud_mental",
         "horas_atencion": "12.0"},
    ]), raw / "expedientes_servicios_sociales.csv", **fmt)
    write_csv(pd.DataFrame([
        {"id_encuestado": "E1", "seccion_censal": big, "mes": "201912", "punt_vivienda": "-0.1",
         "punt_entorno_fisico": "0.0", "punt_equipamientos": "0.0", "punt_cohesion_social": "0.0",
         "punt_molestias_inseguridad": "0.0", "se_siente_inseguro": "sí"},
        {"id_encuestado": "E2", "seccion_censal": big, "mes": "202001", "punt_vivienda": "0.0",
         "punt_entorno_fisico": "0.0", "punt_equipamientos": "0.0", "punt_cohesion_social": "0.0",
         "punt_molestias_inseguridad": "0.0", "se_siente_inseguro": "no"},
    ]), raw / "encuesta_convivencia.csv", **fmt)
    return node


def write_piraeus(node: Path) -> Path:
    """Piraeus: GR-PIR:DK3-07 (2,000 / 2,500), GR-PIR:DK1-01 (40). 2019-12: one burglary ('diarrixi_katoikias')
    -> 0.5 per 1,000; 2020-01: one 'via' -> 0.4 per 1,000; survey 2020-01 sum 0.2 -> 4.30."""
    big, small = "DK3-07", "DK1-01"
    _areas(node, "GR-PIR:", big, small)
    raw = node / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rows = []
    for code in (big, small):
        for year in (2019, 2020):
            rows.append({"kodikos_geitonias": code, "etos": year,
                         "plithysmos": (2000 if year == 2019 else 2500) if code == big else 40,
                         "meridio_0_14": 0.13, "meridio_65_plus": 0.24, "meso_megethos_noikokyriou": 2.4,
                         "meridio_koinonikis_katoikias": 0.01, "eisodima_ana_katoiko_keur": 11.8,
                         "meridio_chamilou_eisodimatos": 0.25, "dikaiouchoi_kea_ana_1000": 45.0,
                         "meridio_allodapon": 0.09})
    pd.DataFrame(rows).to_parquet(raw / "mitroo_geitonion.parquet", index=False)
    fmt = {"encoding": "utf-8", "delimiter": "\t"}
    write_csv(pd.DataFrame([
        {"arithmos_symvantos": "PIR-2019-000001", "imerominia_ora": "09/12/2019 22:00", "kodikos_geitonias": big,
         "katigoria": "diarrixi_katoikias"},
        {"arithmos_symvantos": "PIR-2020-000001", "imerominia_ora": "19/01/2020 01:45", "kodikos_geitonias": big,
         "katigoria": "via"},
    ]), raw / "symvanta.tsv", **fmt)
    write_csv(pd.DataFrame([
        {"kodikos_erotomenou": "Q1", "kodikos_geitonias": big, "minas": "2020-01", "vathmos_katoikies": "0.1",
         "vathmos_fysiko_perivallon": "0.1", "vathmos_ypiresies": "0.0", "vathmos_koinoniki_synochi": "0.0",
         "vathmos_enochlisi_anasfaleia": "0.0", "aisthanetai_anasfalis": "ochi"},
    ]), raw / "erevna_poiotitas_zois.tsv", **fmt)
    return node


WRITERS = {"genk": write_genk, "sant_boi": write_sant_boi, "piraeus": write_piraeus}
