"""Every generated table has the file name, columns, encoding, delimiter and formats of docs/raw-records.md;
--records is met within 10%; user mistakes are ConfigErrors naming what to change."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from federation.errors import ConfigError
from devtools.synthetic import generate
from devtools.synthetic.generator import DEFAULT_PROFILES

SCORES_NL = ["score_woningvoorraad", "score_fysieke_omgeving", "score_voorzieningen", "score_sociale_samenhang",
             "score_overlast_onveiligheid"]
# node, file, read options, columns (docs/raw-records.md), {column: date/datetime/month format}, area column, area pattern
TABLES = [
    ("police", "raw/incidents.csv", dict(sep=";", encoding="cp1252"),
     ["registratienummer", "datum_registratie", "buurtcode", "incidentsoort", "prioriteit"],
     {"datum_registratie": "%d-%m-%Y %H:%M"}, "buurtcode", r"BU0917\d{4}"),
    ("municipality", "raw/meldingen_openbare_ruimte.csv", dict(sep=",", encoding="utf-8"),
     ["melding_id", "gemeld_op", "buurtcode", "categorie"], {"gemeld_op": "%Y-%m-%dT%H:%M:%S"}, "buurtcode", r"BU0917\d{4}"),
    ("municipality", "raw/bewonersenquete.csv", dict(sep=",", encoding="utf-8"),
     ["respondent_id", "buurtcode", "peilmaand", *SCORES_NL, "voelt_zich_onveilig"], {"peilmaand": "%Y-%m"},
     "buurtcode", r"BU0917\d{4}"),
    ("buurtteams", "raw/casussen.csv", dict(sep=",", encoding="utf-8"),
     ["casusnummer", "huishouden_pseudoniem", "buurtcode", "datum_aanmelding", "datum_afsluiting", "leefgebieden",
      "contacturen"], {"datum_aanmelding": "%Y-%m-%d", "datum_afsluiting": "%Y-%m-%d"}, "buurtcode", r"BU0917\d{4}"),
    ("genk", "raw/sectoren_jaarcijfers.csv", dict(sep=";", encoding="utf-8-sig", decimal=","),
     ["sectorcode", "jaar", "inwoners", "aandeel_0_14", "aandeel_65_plus", "gemiddelde_gezinsgrootte",
      "aandeel_sociale_huurwoningen", "netto_belastbaar_inkomen_per_inwoner", "aandeel_lage_inkomens",
      "leefloners_per_1000", "jeugdhulp_pct", "thuiszorg_per_1000", "aandeel_buitenlandse_herkomst"], {},
     "sectorcode", r"71016[A-H]\d{3}"),
    ("genk", "raw/pv_registraties.csv", dict(sep=";", encoding="utf-8-sig"),
     ["pv_nummer", "datum_feiten", "sectorcode", "misdrijfcategorie"], {"datum_feiten": "%d/%m/%Y %H:%M"},
     "sectorcode", r"71016[A-H]\d{3}"),
    ("genk", "raw/ocmw_dossiers.csv", dict(sep=";", encoding="utf-8-sig"),
     ["dossiernummer", "gezin_pseudoniem", "sectorcode", "steunvorm", "begindatum", "einddatum"],
     {"begindatum": "%d/%m/%Y", "einddatum": "%d/%m/%Y"}, "sectorcode", r"71016[A-H]\d{3}"),
    ("genk", "raw/meldingen_publieke_ruimte.csv", dict(sep=";", encoding="utf-8-sig"),
     ["meldingsnummer", "tijdstip_melding", "sectorcode", "soort"], {"tijdstip_melding": "%d/%m/%Y %H:%M"},
     "sectorcode", r"71016[A-H]\d{3}"),
    ("genk", "raw/leefbaarheidsbevraging.csv", dict(sep=";", encoding="utf-8-sig", decimal=","),
     ["respondentnummer", "sectorcode", "bevragingsmaand", "score_woningbestand", "score_fysieke_omgeving",
      "score_voorzieningen", "score_sociale_cohesie", "score_overlast_onveiligheid", "voelt_zich_onveilig"],
     {"bevragingsmaand": "%m/%Y"}, "sectorcode", r"71016[A-H]\d{3}"),
    ("sant_boi", "raw/padron_secciones.csv", dict(sep=";", encoding="iso-8859-1"),
     ["seccion_censal", "anio", "poblacion", "pct_0_14", "pct_65_mas", "tamano_medio_hogar", "pct_vivienda_social",
      "renta_media_persona_miles_eur", "pct_hogares_renta_baja", "perceptores_rgc_por_1000",
      "pct_menores_atencion_infancia", "dependencia_por_1000", "pct_nacionalidad_extranjera"], {},
     "seccion_censal", r"08200\d{5}"),
    ("sant_boi", "raw/prestaciones.csv", dict(sep=";", encoding="iso-8859-1"),
     ["num_expediente", "unidad_convivencia_seudonimo", "seccion_censal", "prestacion", "fecha_alta", "fecha_baja"],
     {"fecha_alta": "%Y%m%d", "fecha_baja": "%Y%m%d"}, "seccion_censal", r"08200\d{5}"),
    ("sant_boi", "raw/incidencias_via_publica.csv", dict(sep=";", encoding="iso-8859-1"),
     ["id_incidencia", "fecha_hora", "seccion_censal", "tipo"], {"fecha_hora": "%Y%m%d %H:%M"},
     "seccion_censal", r"08200\d{5}"),
    ("sant_boi", "raw/expedientes_servicios_sociales.csv", dict(sep=";", encoding="iso-8859-1"),
     ["num_expediente", "unidad_convivencia_seudonimo", "seccion_censal", "fecha_apertura", "fecha_cierre", "ambitos",
      "horas_atencion"], {"fecha_apertura": "%Y%m%d", "fecha_cierre": "%Y%m%d"}, "seccion_censal", r"08200\d{5}"),
    ("sant_boi", "raw/encuesta_convivencia.csv", dict(sep=";", encoding="iso-8859-1"),
     ["id_encuestado", "seccion_censal", "mes", "punt_vivienda", "punt_entorno_fisico", "punt_equipamientos",
      "punt_cohesion_social", "punt_molestias_inseguridad", "se_siente_inseguro"], {"mes": "%Y%m"},
     "seccion_censal", r"08200\d{5}"),
    ("piraeus", "raw/symvanta.tsv", dict(sep="\t", encoding="utf-8"),
     ["arithmos_symvantos", "imerominia_ora", "kodikos_geitonias", "katigoria"], {"imerominia_ora": "%d/%m/%Y %H:%M"},
     "kodikos_geitonias", r"DK[1-5]-\d{2}"),
    ("piraeus", "raw/erevna_poiotitas_zois.tsv", dict(sep="\t", encoding="utf-8"),
     ["kodikos_erotomenou", "kodikos_geitonias", "minas", "vathmos_katoikies", "vathmos_fysiko_perivallon",
      "vathmos_ypiresies", "vathmos_koinoniki_synochi", "vathmos_enochlisi_anasfaleia", "aisthanetai_anasfalis"],
     {"minas": "%Y-%m"}, "kodikos_geitonias", r"DK[1-5]-\d{2}"),
]
PREFIX = {"police": "", "municipality": "", "buurtteams": "", "genk": "BE-GNK:", "sant_boi": "ES-SBL:", "piraeus": "GR-PIR:"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("formats")
    return out, generate(out, cities=["heerlen", "genk", "sant_boi", "piraeus"], seed=5, records=90_000, months=12)


@pytest.mark.parametrize("node,file,options,columns,formats,area,pattern", TABLES, ids=[f"{t[0]}/{t[1]}" for t in TABLES])
def test_csv_tables_as_documented(nodes, node, file, options, columns, formats, area, pattern) -> None:
    frame = pd.read_csv(nodes[0] / node / file, dtype=str, keep_default_na=False, **options)
    assert list(frame.columns) == columns
    assert len(frame) > 0
    assert frame[area].str.fullmatch(pattern).all()
    first_id = frame.columns[0]
    if file != "raw/sectoren_jaarcijfers.csv" and file != "raw/padron_secciones.csv":
        assert frame[first_id].is_unique
    for column, fmt in formats.items():
        values = frame[column][frame[column] != ""]
        pd.to_datetime(values, format=fmt)  # raises on any value in another format
    known = set(pd.read_csv(nodes[0] / node / "public" / "areas.csv")["area_code"])
    assert set(PREFIX[node] + frame[area]) <= known
    if options.get("decimal") == ",":
        assert frame.filter(like="score_").apply(lambda c: c.str.contains(",")).any().any() or \
            frame.filter(like="aandeel_").apply(lambda c: c.str.contains(",")).any().any()


def test_byte_level_encodings(nodes) -> None:
    out = nodes[0]
    assert (out / "genk/raw/pv_registraties.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert not (out / "piraeus/raw/symvanta.tsv").read_bytes().startswith(b"\xef\xbb\xbf")
    spanish = (out / "sant_boi/raw/incidencias_via_publica.csv").read_bytes()
    assert "alumbrado_público".encode("iso-8859-1") in spanish and "público".encode("utf-8") not in spanish


def test_parquet_tables_as_documented(nodes) -> None:
    out = nodes[0]
    register = pd.read_parquet(out / "municipality/raw/register_buurt.parquet")
    assert list(register.columns) == [
        "buurtcode", "jaar", "inwoners", "aandeel_0_15", "aandeel_65_plus", "gem_huishoudgrootte",
        "aandeel_corporatiewoningen", "gem_inkomen_per_inwoner", "aandeel_laag_inkomen", "bijstand_per_1000",
        "jeugdzorg_pct", "wmo_per_1000", "aandeel_migratieachtergrond"]
    benefits = pd.read_parquet(out / "municipality/raw/uitkeringen.parquet")
    assert list(benefits.columns) == ["dossiernummer", "huishouden_pseudoniem", "buurtcode", "regeling", "startdatum", "einddatum"]
    assert set(benefits["regeling"]) == {"bijstand", "schuldhulp", "bijzondere_bijstand"}
    assert benefits["einddatum"].isna().any() and benefits["einddatum"].notna().any()
    end, start = pd.to_datetime(benefits["einddatum"]), pd.to_datetime(benefits["startdatum"])
    assert (end.isna() | (end >= start)).all()
    piraeus = pd.read_parquet(out / "piraeus/raw/mitroo_geitonion.parquet")
    assert list(piraeus.columns) == [
        "kodikos_geitonias", "etos", "plithysmos", "meridio_0_14", "meridio_65_plus", "meso_megethos_noikokyriou",
        "meridio_koinonikis_katoikias", "eisodima_ana_katoiko_keur", "meridio_chamilou_eisodimatos",
        "dikaiouchoi_kea_ana_1000", "meridio_allodapon"]


def test_categories_and_units(nodes) -> None:
    out = nodes[0]
    cases = pd.read_csv(out / "sant_boi/raw/expedientes_servicios_sociales.csv", sep=";", encoding="iso-8859-1")
    domains = set(cases["ambitos"].str.split("/").explode())
    assert domains == {"deudas", "vivienda", "crianza", "salud_mental", "violencia_doméstica", "infancia"}
    padron = pd.read_csv(out / "sant_boi/raw/padron_secciones.csv", sep=";", encoding="iso-8859-1")
    assert padron["pct_hogares_renta_baja"].between(1, 100).all()  # percent, not a share
    genk = pd.read_csv(out / "genk/raw/sectoren_jaarcijfers.csv", sep=";", decimal=",", encoding="utf-8-sig")
    assert genk["netto_belastbaar_inkomen_per_inwoner"].between(5_000, 40_000).all()  # whole euros
    survey = pd.read_csv(out / "sant_boi/raw/encuesta_convivencia.csv", sep=";", encoding="iso-8859-1")
    assert set(survey["se_siente_inseguro"]) == {"sí", "no"}
    areas = pd.read_csv(out / "sant_boi/public/areas.csv", dtype={"area_code": str})
    assert areas["area_code"].str.fullmatch(r"ES-SBL:08200\d{5}").all()


@pytest.mark.parametrize("records", [45_000, 150_000])
def test_records_within_ten_percent(tmp_path: Path, records: int) -> None:
    summary = generate(tmp_path, cities=["heerlen", "genk"], seed=2, records=records, months=12)
    assert abs(summary.records_written / records - 1) <= 0.10
    written = sum(len(pd.read_csv(p, sep=None, engine="python", encoding_errors="replace")) if p.suffix != ".parquet"
                  else len(pd.read_parquet(p)) for p in tmp_path.rglob("*.*"))
    assert written == summary.records_written


def test_too_few_records_says_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--records 5,000 is too small .* at least [\d,]+ .*lower --months"):
        generate(tmp_path, cities=["heerlen"], records=5_000, months=24)
    assert not any(tmp_path.iterdir())  # nothing written


def test_user_mistakes_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist: pass --cbs"):
        generate(tmp_path, cities=["heerlen"], cbs_path=tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="no profile .*atlantis"):
        generate(tmp_path, cities=["atlantis"])
    with pytest.raises(ConfigError, match="--start"):
        generate(tmp_path, cities=["genk"], start="2019/01")
    broken = yaml.safe_load((DEFAULT_PROFILES / "genk.yaml").read_text(encoding="utf-8"))
    del broken["nodes"]["genk"]["pv_registraties"]["columns"]["time"]
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "genk.yaml").write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"genk\.yaml \(nodes\.genk\.pv_registraties\) columns: field 'time' is missing"):
        generate(tmp_path / "out", cities=["genk"], profiles=profiles)
    broken = yaml.safe_load((DEFAULT_PROFILES / "genk.yaml").read_text(encoding="utf-8"))
    broken["nodes"]["genk"]["ocmw_dossiers"]["id_template"] = "OCMW-{jaar}-{seq}"
    (profiles / "genk.yaml").write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ocmw_dossiers\): id template 'OCMW-\{jaar\}-\{seq\}' cannot be formatted"):
        generate(tmp_path / "out", cities=["genk"], profiles=profiles)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_world_and_window_mistakes_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--world: no world 'nul' .*\(available: default, null\)"):
        generate(tmp_path / "out", cities=["heerlen"], world="nul")
    with pytest.raises(ConfigError, match=r"the window 2019-02 \+ 2 month\(s\) holds no survey wave .*move --start"):
        generate(tmp_path / "out", cities=["heerlen"], start="2019-02", months=2)
    profiles = tmp_path / "profiles"
    shutil.copytree(DEFAULT_PROFILES, profiles)
    genk = yaml.safe_load((profiles / "genk.yaml").read_text(encoding="utf-8"))
    genk["window"] = {"start": "2020-01", "months": 12}
    (profiles / "genk.yaml").write_text(yaml.safe_dump(genk, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"set different windows .*give --start and --months"):
        generate(tmp_path / "out", cities=["heerlen", "genk"], profiles=profiles)
    (profiles / "worlds" / "typo.yaml").write_text("latent: {lead_visible: false}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"typo\.yaml: field 'latent\.lead_visible' is not a latent field"):
        generate(tmp_path / "out", cities=["heerlen"], profiles=profiles, world="typo")
    heerlen = yaml.safe_load((profiles / "heerlen.yaml").read_text(encoding="utf-8"))
    del heerlen["latent"]["leads"]["youth_nuisance"]["basis"]
    (profiles / "heerlen.yaml").write_text(yaml.safe_dump(heerlen, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"heerlen\.yaml: field 'latent\.leads\.youth_nuisance\.basis' is missing"):
        generate(tmp_path / "out", cities=["heerlen"], profiles=profiles)
    assert not (tmp_path / "out").exists()


def test_a_new_city_needs_yaml_only(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    new = yaml.safe_load((DEFAULT_PROFILES / "genk.yaml").read_text(encoding="utf-8"))
    new["city"] = "hasselt"
    new["areas"].update(prefix="BE-HSL:", count=30, code_template="71022{group}{seq:03d}")
    new["nodes"] = {"hasselt": new["nodes"].pop("genk")}
    (profiles / "hasselt.yaml").write_text(yaml.safe_dump(new, allow_unicode=True), encoding="utf-8")
    shutil.copy(DEFAULT_PROFILES / "genk.yaml", profiles / "genk.yaml")
    generate(tmp_path / "out", cities=["hasselt", "genk"], records=40_000, months=6, profiles=profiles)
    areas = pd.read_csv(tmp_path / "out" / "hasselt" / "public" / "areas.csv")
    assert areas["area_code"].str.match(r"BE-HSL:71022[A-H]\d{3}$").all() and areas["area_code"].nunique() == 30
    assert re.search(r"^pv_nummer;", (tmp_path / "out/hasselt/raw/pv_registraties.csv").read_text(encoding="utf-8-sig"))


@pytest.mark.parametrize("city", ["heerlen", "genk", "sant_boi", "piraeus"])
def test_each_citys_records_cover_the_window_its_nodes_contracts_declare(city: str) -> None:
    """`pulse-twin generate --cities <city>` alone must write what the city's nodes can build: a shorter
    window is refused by the contract's check of missing months."""
    from clients.contracts import load_contract
    from devtools.synthetic import profile as profiles
    from devtools.synthetic.defaults import DEFAULT_PROFILES
    from devtools.synthetic.generator import default_window
    from federation.config import configs_dir

    prof = profiles.load(DEFAULT_PROFILES, city)
    start, months = default_window([prof], None, None)
    generated = pd.period_range(start, periods=months, freq="M")
    for node in prof.nodes:
        assert (configs_dir() / "contract" / f"{node}.yaml").is_file(), node
        periods = load_contract(node).periods
        declared = pd.period_range(str(periods.start), str(periods.end), freq="M")
        assert set(declared) <= set(generated), (node, start, months)
