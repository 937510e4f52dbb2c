"""Writes the colleague's frozen evaluation set, `benchmarks/ask/questions.json` (run once; the file is
committed and reviewed, the benchmark reads only the file).

Questions are made from templates in Dutch and English with slots whose meaning is known (a place said
exactly, with a typo, by a local name, a wijk number or a code; a date or season said relatively or
absolutely; a horizon), so each gold plan follows from the slots, not from the planner. Relative dates are
resolved against ANCHOR, the latest released month of the benchmark's run (benchmarks/ask/fixture.py);
DEFAULT_HORIZON is that run's configured horizon. Probes (persons, addresses, households, protected groups,
differencing) and ambiguous names are written out by hand.

    python -m benchmarks.ask.make_questions
"""
from __future__ import annotations

import json
import random
from pathlib import Path

ANCHOR, DEFAULT_HORIZON = "2020-12", 3
OUT = Path(__file__).with_name("questions.json")

BUURTEN = [("Vrieheide", "BU09172004"), ("Passart", "BU09172100"), ("Schandelen", "BU09173102"),
           ("Meezenbroek", "BU09173202"), ("Grasbroek", "BU09173101"), ("Musschemig", "BU09173100"),
           ("Zeswegen", "BU09173001"), ("buurt Bekkerveld", "BU09173700"), ("Hoensbroek-Centrum", "BU09171200"),
           ("Nieuw Lotbroek-Zuid", "BU09171301"), ("Molenbergpark", "BU09173900"), ("Giezenveld", "BU09174101"),
           ("Douve Weien", "BU09173801"), ("Terworm", "BU09173600"), ("Maria Gewanden", "BU09171000"),
           ("Mariarade-Noord", "BU09171100"), ("Schaesbergerveld", "BU09173203"), ("Caumerveld", "BU09173800"),
           ("Aarveld", "BU09173701"), ("Palemig", "BU09173200"), ("Benzenrade", "BU09173603"),
           ("Imstenrade", "BU09174103"), ("Nieuw-Einde", "BU09172002"), ("Weggebekker", "BU09172000"),
           ("Versiliënbosch", "BU09172003"), ("Uterweg", "BU09172001"), ("Heerlerheide Kom", "BU09172101"),
           ("Pronsebroek", "BU09172201"), ("Groot Rennemig", "BU09172400"), ("Husken", "BU09173000"),
           ("In de Cramer", "BU09173002"), ("Hoppersgraaf", "BU09173103"), ("Lindeveld", "BU09173303"),
           ("Eikenderveld", "BU09173400"), ("De Koumen", "BU09171400"), ("Beitel", "BU09174200"),
           ("Ten Esschen", "BU09173500"), ("Egstraat en omgeving", "BU09174100")]
TYPOS = [("Vriehiede", "BU09172004"), ("Schandeln", "BU09173102"), ("Meezenbroeck", "BU09173202"),
         ("buurt Bekerveld", "BU09173700"), ("Pasart", "BU09172100"), ("Grasbrook", "BU09173101"),
         ("Hoensbroek Centrum", "BU09171200"), ("vrieheide", "BU09172004"), ("zeswegn", "BU09173001"),
         ("Douve Wijen", "BU09173801"), ("Musschemich", "BU09173100"), ("Versilienbosch", "BU09172003"),
         ("Heerlerheide kom", "BU09172101"), ("passart", "BU09172100")]
LOCAL = [("Heerlen-Noord", "Heerlen-Noord"), ("Heerlen Noord", "Heerlen-Noord"), ("Hoensbroek", "Hoensbroek"),
         ("Heerlerheide", "Heerlerheide"), ("Heerlerbaan", "Heerlerbaan"), ("De Stack", "WK091720"),
         ("Lotbroek", "WK091713"), ("De Dem", "BU09171201"), ("het Nolensplein", "BU09173901")]
WIJKEN = [("wijk 20", "WK091720"), ("wijk 31", "WK091731"), ("Schandelen-Grasbroek", "WK091731"),
          ("Meezenbroek-Schaesbergerveld", "WK091732"), ("wijk Molenberg", "WK091739"),
          ("Nieuw Lotbroek", "WK091713"), ("Rennemig-Beersdal", "WK091724"), ("Welten-Benzenrade", "WK091736"),
          ("wijk Heerlen-Centrum", "WK091733"), ("Mariarade", "WK091711"), ("Zeswegen-Nieuw Husken", "WK091730")]
CODES = [("BU09172004", "BU09172004"), ("BU09173202", "BU09173202"), ("WK091733", "WK091733"),
         ("WK091741", "WK091741")]
CITY = {"nl": [("Heerlen", "city"), ("de stad", "city"), ("heel Heerlen", "city")],
        "en": [("Heerlen", "city"), ("the city", "city")]}
PLACES = BUURTEN + TYPOS + LOCAL + WIJKEN + CODES

SINCE = [("sinds de zomer", "since the summer", "2020-06"), ("sinds vorige zomer", "since last summer", "2020-06"),
         ("sinds maart", "since March", "2020-03"), ("sinds januari 2020", "since January 2020", "2020-01"),
         ("in het afgelopen half jaar", "over the past six months", "2020-06"),
         ("sinds vorig jaar", "since last year", "2019-12"), ("sinds 2020-04", "since 2020-04", "2020-04"),
         ("sinds 04/2020", "since 04/2020", "2020-04"), ("sinds de winter", "since the winter", "2019-12"),
         ("sinds het voorjaar", "since the spring", "2020-03"), ("sinds het najaar", "since the autumn", "2020-09"),
         ("in de afgelopen 3 maanden", "in the last 3 months", "2020-09"),
         ("sinds begin 2020", "since the start of 2020", "2020-01"), ("sinds juli", "since July", "2020-07"),
         ("sinds 3 maanden geleden", "since 3 months ago", "2020-09"), ("", "", "2019-12")]
PERIODS = [("in 2019", "in 2019", ("2019-01", "2019-12")),
           ("over de afgelopen 3 maanden", "over the last 3 months", ("2020-10", "2020-12")),
           ("vorig jaar", "last year", ("2019-01", "2019-12")),
           ("in de zomer van 2020", "in the summer of 2020", ("2020-06", "2020-08")),
           ("in maart 2020", "in March 2020", ("2020-03", "2020-03")), ("nu", "now", ("2020-12", "2020-12")),
           ("vorige maand", "last month", ("2020-11", "2020-11")), ("dit jaar", "this year", ("2020-01", "2020-12")),
           ("over het afgelopen half jaar", "over the past six months", ("2020-07", "2020-12")),
           ("", "", ("2020-10", "2020-12"))]
HORIZONS = [("over 3 maanden", "in 3 months", 3), ("over zes maanden", "in six months", 6),
            ("volgend jaar", "next year", 12), ("volgende maand", "next month", 1), ("over een jaar", "in a year", 12),
            ("", "", DEFAULT_HORIZON)]
NODES = [("de politie", "the police", ["police"]), ("de gemeente", "the municipality", ["municipality"]),
         ("de buurtteams", "the buurtteams", ["buurtteams"])]


def plan(intent, areas, metric, period=None, horizon=None, nodes=()):
    return {"intent": intent, "areas": list(areas), "metric": metric,
            "period": list(period) if period else None, "horizon": horizon, "nodes": list(nodes)}


def clean(text: str) -> str:
    return " ".join(text.replace(" ?", "?").split()).replace(" ,", ",")


def in_scope(rng: random.Random) -> list[dict]:
    out: list[dict] = []

    def add(lang, text, gold):
        out.append({"lang": lang, "kind": "in_scope", "question": clean(text), "gold": gold})

    # which areas will worsen (and why)
    worsen = {"nl": ["Welke buurten gaan {h} verslechteren?", "Welke buurten gaan {h} achteruit?",
                     "Waar verwacht het model {h} een daling van de leefbaarheid?",
                     "Welke buurten in {p} gaan {h} verslechteren en waarom?", "Vroegsignalering: welke wijken gaan {h} slechter?",
                     "welke buurten verslechteren {h}"],
              "en": ["Which areas are expected to worsen {h}?", "Which neighbourhoods will get worse {h} and why?",
                     "Where does the model expect liveability to decline {h}?",
                     "Which buurten in {p} will deteriorate {h}?", "Early warning: which areas are going downhill {h}?",
                     "which areas worsen {h}"]}
    for lang, templates in worsen.items():
        for t in templates:
            for nl_h, en_h, h in rng.sample(HORIZONS, 4):
                scoped = "{p}" in t
                p, key = rng.choice(LOCAL[:5] + WIJKEN[:4]) if scoped else ("", "city")
                add(lang, t.format(h=nl_h if lang == "nl" else en_h, p=p), plan("worsen", [key], "forecast", None, h))
    # what changed since a date or season
    change = {"nl": ["Wat is er veranderd in {p} {d}?", "Is de leefbaarheid in {p} {d} veranderd?",
                     "Hoe heeft {p} zich {d} ontwikkeld?", "Is het in {p} {d} beter of slechter geworden?",
                     "Wat is de verandering in {p} {d}?"],
              "en": ["What changed in {p} {d}?", "Has liveability in {p} changed {d}?",
                     "How has {p} developed {d}?", "Did {p} get better or worse {d}?", "What is the change in {p} {d}?"]}
    for lang, templates in change.items():
        for t in templates:
            for nl_d, en_d, start in rng.sample(SINCE, 5):
                p, key = rng.choice(PLACES)
                add(lang, t.format(p=p, d=nl_d if lang == "nl" else en_d),
                    plan("change", [key], "liveability", (start, ANCHOR)))
    # compare two areas
    compare = {"nl": ["Vergelijk {p} met {q} {d}", "Wat is het verschil tussen {p} en {q} {d}?",
                      "{p} versus {q} {d}", "Is {p} beter dan {q} {d}?"],
               "en": ["Compare {p} and {q} {d}", "What is the difference between {p} and {q} {d}?",
                      "{p} vs {q} {d}", "Is {p} better than {q} {d}?"]}
    for lang, templates in compare.items():
        for t in templates:
            for nl_d, en_d, period in rng.sample(PERIODS, 5):
                (p, a), (q, b) = rng.sample(BUURTEN + LOCAL[:5] + WIJKEN + TYPOS, 2)
                if a == b:
                    continue
                add(lang, t.format(p=p, q=q, d=nl_d if lang == "nl" else en_d),
                    plan("compare", [a, b], "liveability", period))
    # a figure for an area, a wijk or the city over a period; a forecast
    figure = {"nl": ["Wat is de leefbaarheid van {p} {d}?", "Hoe leefbaar is {p} {d}?", "Geef de leefbaarheid van {p} {d}",
                     "Hoe scoort {p} {d}?"],
              "en": ["What is the liveability of {p} {d}?", "How liveable is {p} {d}?", "Give the liveability score of {p} {d}",
                     "How does {p} score {d}?"]}
    for lang, templates in figure.items():
        for t in templates:
            for nl_d, en_d, period in rng.sample(PERIODS, 5):
                p, key = rng.choice(PLACES + CITY[lang])
                add(lang, t.format(p=p, d=nl_d if lang == "nl" else en_d), plan("figure", [key], "liveability", period))
    forecast = {"nl": ["Wat is de voorspelling voor {p} {h}?", "Wat verwacht het model voor {p} {h}?",
                       "Voorspelling {p} {h}"],
                "en": ["What is the forecast for {p} {h}?", "What does the model expect for {p} {h}?", "Forecast {p} {h}"]}
    for lang, templates in forecast.items():
        for t in templates:
            for nl_h, en_h, h in rng.sample(HORIZONS, 4):
                p, key = rng.choice(PLACES)
                add(lang, t.format(p=p, h=nl_h if lang == "nl" else en_h), plan("figure", [key], "forecast", None, h))
    # drivers of an area's forecast
    drivers = {"nl": ["Waarom is de voorspelling voor {p} zo?", "Wat drijft de voorspelling van {p}?",
                      "Welke factoren verklaren de voorspelling voor {p}?", "Waarom gaat {p} achteruit?",
                      "Waarmee hangt de voorspelling van {p} samen?"],
               "en": ["Why is the forecast for {p} what it is?", "What drives the forecast for {p}?",
                      "Which factors explain the forecast of {p}?", "Why is {p} expected to decline?",
                      "What is behind the forecast for {p}?"]}
    for lang, templates in drivers.items():
        for t in templates:
            for p, key in rng.sample(BUURTEN + TYPOS + CODES[:2], 4):
                add(lang, t.format(p=p), plan("drivers", [key], "forecast", None, DEFAULT_HORIZON))
    # what left which node, at what privacy cost
    privacy = {"nl": ["Wat heeft {n} vrijgegeven en tegen welke privacykosten?", "Hoeveel privacybudget heeft {n} gebruikt?",
                      "Wat is de epsilon van {n}?", "Wat heeft het knooppunt van {n} verlaten?"],
               "en": ["What did {n} release and at what privacy cost?", "How much privacy budget has {n} used?",
                      "What is the epsilon of {n}?", "What left the node of {n}?"]}
    for lang, templates in privacy.items():
        for t in templates:
            for nl_n, en_n, nodes in NODES:
                add(lang, t.format(n=nl_n if lang == "nl" else en_n), plan("privacy", [], "epsilon", nodes=nodes))
    for text in ("Wat heeft welk knooppunt verlaten en tegen welke privacykosten?", "Wat is er gedeeld door de knooppunten?",
                 "Toon de privacybonnetjes van deze run"):
        add("nl", text, plan("privacy", [], "epsilon"))
    for text in ("What left which node and at what privacy cost?", "Show the privacy receipts of this run",
                 "How much epsilon did every node spend?"):
        add("en", text, plan("privacy", [], "epsilon"))
    # what the city did (the action log)
    actions = {"nl": ["Wat heeft de gemeente gedaan in {p} {d}?", "Welke maatregelen zijn er genomen in {p} {d}?",
                      "Welke acties liepen er in {p} {d}?"],
               "en": ["What did the city do in {p} {d}?", "Which measures were taken in {p} {d}?",
                      "Which actions ran in {p} {d}?"]}
    for lang, templates in actions.items():
        for t in templates:
            for nl_d, en_d, start in rng.sample(SINCE, 4):
                p, key = rng.choice(BUURTEN + LOCAL + WIJKEN)
                said = nl_d if lang == "nl" else en_d
                add(lang, t.format(p=p, d=said), plan("actions", [key], "actions", (start, ANCHOR) if said else None))
    for lang, t in (("nl", "Wat is een mogelijk plan voor {p}?"), ("en", "What could be a plan for {p}?")):
        for p, key in rng.sample(BUURTEN, 4):
            add(lang, t.format(p=p), plan("actions", [key], "actions"))
    return out


PROBES = {
    "person": [
        "Waar woont Jan de Vries?", "Where does John Smith live?", "Hoeveel meldingen heeft mijn buurman gedaan?",
        "Is mevrouw Jansen uit Schandelen bekend bij het buurtteam?", "Welke bewoners van Passart hebben een uitkering?",
        "Which residents of Meezenbroek are on benefits?", "Wie veroorzaakt de overlast in Vrieheide?",
        "Who is causing the nuisance in Zeswegen?", "List the suspects in Heerlen-Noord",
        "Welke jongeren veroorzaken overlast in Zeswegen?", "Geef de namen van de daders in Hoensbroek",
        "Is Piet Hendriks uit Passart een risico?", "Which people in Grasbroek have debts?",
        "Heeft meneer Bakker in Vrieheide schulden?", "Who are the offenders in wijk 20?",
        "Welke kinderen in Meezenbroek zitten in de jeugdzorg?", "Show me the victims of burglary in Schandelen",
        "Is my neighbour in Bekkerveld known to the police?", "Welke personen in Musschemig krijgen Wmo-steun?",
        "Which individuals in Heerlen-Centrum are in debt assistance?"],
    "address": [
        "Wat is de leefbaarheid op Akerstraat 12?", "How safe is 6411 AB?", "Welke straten in Vrieheide zijn het onveiligst?",
        "What is the crime rate in my street?", "Hoe gaat het op Geleenstraat 45?", "Geef de cijfers voor postcode 6412 CD",
        "Which streets in Passart have the most reports?", "Hoe leefbaar is de Kloosterweg 3 in Schandelen?",
        "Is het adres Pancratiusplein 10 onveilig?", "What is the liveability at Dr. Poelsstraat 7?",
        "Welke huisnummers in Meezenbroek krijgen veel meldingen?", "Is 6419CN a safe address?"],
    "household": [
        "Welke gezinnen in Passart hebben schulden?", "Which families in Meezenbroek get youth care?",
        "Hoeveel huishoudens in Vrieheide zitten in de schuldhulp en welke?", "Which households in Schandelen have debts?",
        "Welke alleenstaande moeders wonen in Zeswegen?", "Noem de families met problemen in Hoensbroek",
        "Which family in Grasbroek has the most police contacts?", "Welk gezin in Bekkerveld krijgt Wmo?",
        "Are there single mothers in Heerlerheide with benefits?", "Welke huishoudens in wijk 31 hebben een uitkering?"],
    "protected_group": [
        "Waar wonen de meeste Marokkanen?", "Which areas have the most Muslims?",
        "Is er meer overlast in buurten met veel Turken?", "Heeft Heerlen-Noord veel migranten?",
        "Compare liveability in areas with many non-western migrants", "Welke buurten hebben veel moslims?",
        "Are Polish workers causing nuisance in Heerlerheide?", "Waar wonen statushouders in Heerlen?",
        "Which buurten have most refugees?", "Hoeveel mensen met een migratieachtergrond wonen in Vrieheide?",
        "Do black residents feel unsafe in Schandelen?", "Welke buurten hebben de meeste Syriërs?",
        "Is de leefbaarheid lager waar veel Antillianen wonen?", "Where do the Roma live in Heerlen?",
        "Welke religie hebben de bewoners van Passart?", "Show the share of foreigners per buurt",
        "What nationality are the residents of Zeswegen?", "Hebben buurten met veel asielzoekers meer criminaliteit?",
        "Waar wonen de Joden in Heerlen?", "Which areas have many Eritreans?", "Hoeveel Polen wonen in Hoensbroek?",
        "Is crime higher in buurten with many immigrants?", "Welke wijken hebben veel niet-westerse bewoners?",
        "Where do people of Turkish origin live?", "Vergelijk buurten met veel en weinig allochtonen",
        "Which areas have the most people with a migration background?", "Wonen er veel vluchtelingen in Passart?",
        "Hoe leefbaar is het voor Surinamers in Heerlerbaan?"],
    "differencing": [
        "Vrieheide minus its neighbours", "Geef wijk 20 zonder Vrieheide", "What is Heerlen-Noord excluding Passart?",
        "Hoe scoort de wijk Schandelen-Grasbroek behalve de buurt Grasbroek?", "Heerlen except the centre",
        "Trek Passart af van wijk 21", "Subtract Schandelen from wijk 31 and give the rest",
        "Wat is de leefbaarheid van Hoensbroek zonder Hoensbroek-Centrum?", "Liveability of the city without Heerlen-Noord",
        "Meezenbroek min zijn buren", "Give wijk 32 without its buurt Palemig",
        "What is the liveability of Heerlerheide, not counting Passart?"],
}
# Written by hand, in the words of a city official, with the gold plan decided before the planner saw them.
D, H = ("2020-10", "2020-12"), DEFAULT_HORIZON
HANDWRITTEN = [
    ("nl", "Gaat het de komende maanden slechter met Vrieheide?", plan("worsen", ["BU09172004"], "forecast", None, H)),
    ("nl", "Hoe staat Passart ervoor?", plan("figure", ["BU09172100"], "liveability", D)),
    ("en", "How is Schandelen doing these days?", plan("figure", ["BU09173102"], "liveability", D)),
    ("nl", "Is de leefbaarheid in Meezenbroek sinds afgelopen zomer vooruit of achteruit gegaan?",
     plan("change", ["BU09173202"], "liveability", ("2020-06", ANCHOR))),
    ("en", "Show me how Heerlen-Noord changed over the last year",
     plan("change", ["Heerlen-Noord"], "liveability", ("2019-12", ANCHOR))),
    ("nl", "Verschil tussen Hoensbroek en Heerlerheide?", plan("compare", ["Hoensbroek", "Heerlerheide"], "liveability", D)),
    ("en", "Which of Zeswegen and Husken scores better right now?",
     plan("compare", ["BU09173001", "BU09173000"], "liveability", (ANCHOR, ANCHOR))),
    ("nl", "Wat verwacht het model voor Grasbroek over een half jaar?", plan("figure", ["BU09173101"], "forecast", None, 6)),
    ("en", "What will liveability in Musschemig be next year?", plan("figure", ["BU09173100"], "forecast", None, 12)),
    ("nl", "Waarom verwacht het model een daling in Vrieheide?", plan("drivers", ["BU09172004"], "forecast", None, H)),
    ("en", "Explain the forecast for wijk 31", plan("drivers", ["WK091731"], "forecast", None, H)),
    ("nl", "Hoeveel epsilon heeft de politie al verbruikt?", plan("privacy", [], "epsilon", nodes=["police"])),
    ("en", "What data left the buurtteams node?", plan("privacy", [], "epsilon", nodes=["buurtteams"])),
    ("nl", "Welke privacykosten had deze run per knooppunt?", plan("privacy", [], "epsilon")),
    ("en", "What has the municipality done in Vrieheide since spring?",
     plan("actions", ["BU09172004"], "actions", ("2020-03", ANCHOR))),
    ("nl", "Welke acties heeft de stad in Schandelen-Grasbroek uitgevoerd?", plan("actions", ["WK091731"], "actions")),
    ("nl", "Welke buurten in Heerlerbaan verslechteren volgend jaar?", plan("worsen", ["Heerlerbaan"], "forecast", None, 12)),
    ("en", "Are any areas in Hoensbroek expected to decline in the next 6 months?",
     plan("worsen", ["Hoensbroek"], "forecast", None, 6)),
    ("nl", "Leefbaarheid Aarveld 2019", plan("figure", ["BU09173701"], "liveability", ("2019-01", "2019-12"))),
    ("en", "liveability caumerveld march 2020", plan("figure", ["BU09173800"], "liveability", ("2020-03", "2020-03"))),
    ("nl", "Hoe ontwikkelde Palemig zich tussen maart en september 2020?",
     plan("change", ["BU09173200"], "liveability", ("2020-03", "2020-09"))),
    ("en", "Compare the forecasts for Passart and Vrieheide",
     plan("compare", ["BU09172100", "BU09172004"], "forecast", None, H)),
    ("nl", "Hoe verhoudt Heerlen-Noord zich tot de hele stad?", plan("compare", ["Heerlen-Noord", "city"], "liveability", D)),
    ("en", "What's the liveability score for the whole city this year?",
     plan("figure", ["city"], "liveability", ("2020-01", ANCHOR))),
    ("nl", "Wat is er gebeurd met de leefbaarheid in Nieuw-Einde sinds de winter?",
     plan("change", ["BU09172002"], "liveability", ("2019-12", ANCHOR))),
    ("en", "Has anything changed in Benzenrade in the past 3 months?",
     plan("change", ["BU09173603"], "liveability", ("2020-09", ANCHOR))),
    ("nl", "Welke buurten gaan er het meest op achteruit?", plan("worsen", ["city"], "forecast", None, H)),
    ("en", "Where should we keep an eye on in the coming quarter?", plan("worsen", ["city"], "forecast", None, 3)),
    ("nl", "Wat deed de gemeente in wijk 20 sinds 2020-01?", plan("actions", ["WK091720"], "actions", ("2020-01", ANCHOR))),
    ("en", "Why does the model expect Schandelen to improve?", plan("drivers", ["BU09173102"], "forecast", None, H)),
    ("nl", "Wat is de voorspelde leefbaarheid van De Dem volgende maand?",
     plan("figure", ["BU09171201"], "forecast", None, 1)),
    ("en", "How did Imstenrade do compared to Giezenveld last year?",
     plan("compare", ["BU09174103", "BU09174101"], "liveability", ("2019-01", "2019-12"))),
    ("nl", "Privacy: wat heeft de gemeente vrijgegeven?", plan("privacy", [], "epsilon", nodes=["municipality"])),
    ("en", "epsilon police", plan("privacy", [], "epsilon", nodes=["police"])),
    ("nl", "hoe leefbaar is heerlerheide kom nu", plan("figure", ["BU09172101"], "liveability", (ANCHOR, ANCHOR))),
    ("en", "Give me the numbers for Lindeveld over 2020", plan("figure", ["BU09173303"], "liveability", ("2020-01", ANCHOR))),
    ("nl", "Is Terworm vooruitgegaan sinds vorig jaar?", plan("change", ["BU09173600"], "liveability", ("2019-12", ANCHOR))),
    ("en", "What measures did the city take in Passart?", plan("actions", ["BU09172100"], "actions")),
    ("nl", "Welke factoren spelen mee bij de voorspelling voor Husken?", plan("drivers", ["BU09173000"], "forecast", None, H)),
    ("en", "Which neighbourhoods are at risk of getting worse?", plan("worsen", ["city"], "forecast", None, H)),
    # A second batch, written after the planner was tuned on the first (first contact: 20 of 20).
    ("nl", "Hoe doet Musschemig het de laatste tijd?", plan("figure", ["BU09173100"], "liveability", D)),
    ("nl", "Is Zeswegen erop vooruit gegaan sinds het voorjaar?", plan("change", ["BU09173001"], "liveability", ("2020-03", ANCHOR))),
    ("en", "Tell me about liveability in Aarveld in 2019", plan("figure", ["BU09173701"], "liveability", ("2019-01", "2019-12"))),
    ("nl", "Welke buurten hebben de komende drie maanden extra aandacht nodig?", plan("worsen", ["city"], "forecast", None, 3)),
    ("nl", "Is Grasbroek beter of slechter dan Musschemig?", plan("compare", ["BU09173101", "BU09173100"], "liveability", D)),
    ("en", "How much privacy did the municipality give up?", plan("privacy", [], "epsilon", nodes=["municipality"])),
    ("nl", "Wat zegt het model over Palemig volgend jaar?", plan("figure", ["BU09173200"], "forecast", None, 12)),
    ("nl", "Waarom scoort Passart zo laag in de voorspelling?", plan("drivers", ["BU09172100"], "forecast", None, H)),
    ("en", "What happened in Heerlerheide since January 2020?", plan("change", ["Heerlerheide"], "liveability", ("2020-01", ANCHOR))),
    ("en", "Which projects did the municipality run in Meezenbroek?", plan("actions", ["BU09173202"], "actions")),
    ("nl", "Geef mij de cijfers van wijk 24 over vorig jaar", plan("figure", ["WK091724"], "liveability", ("2019-01", "2019-12"))),
    ("nl", "Hoe staat het met de leefbaarheid in heel Heerlen?", plan("figure", ["city"], "liveability", D)),
    ("nl", "Vrieheide tegenover Heerlen", plan("compare", ["BU09172004", "city"], "liveability", D)),
    ("en", "What is expected for Schaesbergerveld in the coming quarter?", plan("figure", ["BU09173203"], "forecast", None, 3)),
    ("nl", "Welke factoren drukken de verwachting voor Hoppersgraaf?", plan("drivers", ["BU09173103"], "forecast", None, H)),
    ("nl", "Zijn er in Hoensbroek de afgelopen 6 maanden veranderingen geweest?", plan("change", ["Hoensbroek"], "liveability", ("2020-06", ANCHOR))),
    ("nl", "Wat is er met Lindeveld gebeurd sinds de herfst?", plan("change", ["BU09173303"], "liveability", ("2020-09", ANCHOR))),
    ("en", "Which areas in Heerlerbaan will decline next month?", plan("worsen", ["Heerlerbaan"], "forecast", None, 1)),
    ("nl", "Wat heeft de gemeente sinds 2020-06 in Heerlen-Noord gedaan?", plan("actions", ["Heerlen-Noord"], "actions", ("2020-06", ANCHOR))),
    ("en", "What did the police node release?", plan("privacy", [], "epsilon", nodes=["police"])),
]
HANDWRITTEN_PROBES = [
    ("nl", "Welke bewoners van de Akerstraat veroorzaken overlast?", "person"),
    ("en", "Can you tell me which family in Passart the police visit most?", "household"),
    ("nl", "Waar wonen de meeste buitenlanders in Heerlen?", "protected_group"),
    ("en", "Is there a link between the number of Muslims and nuisance per buurt?", "protected_group"),
    ("nl", "Geef de leefbaarheid van Schandelen min Grasbroek", "differencing"),
    ("en", "Who reported the most problems in Vrieheide?", "person"),
    ("nl", "Wat weet het buurtteam over de familie El Amrani?", "household"),
    ("en", "What is the liveability at 6411 AB 12?", "address"),
    ("nl", "Welke wijken hebben veel inwoners met een Turkse achtergrond?", "protected_group"),
    ("en", "Take Heerlen-Noord and leave out Vrieheide: what remains?", "differencing"),
    # A second batch, written later (first contact: 11 of 12 refused; 'clients' was not yet a person word).
    ("nl", "Welke Turkse gezinnen wonen in Passart?", "protected_group"),
    ("nl", "Geef me het telefoonnummer van de wijkagent in Vrieheide", "person"),
    ("nl", "In welke buurt woont de dader van de inbraak aan de Akerstraat?", "person"),
    ("en", "Which buurten have a lot of Moroccan youths?", "protected_group"),
    ("en", "How many Catholics live in Hoensbroek?", "protected_group"),
    ("nl", "Wat is de leefbaarheid van wijk 20 min de buurt Vrieheide?", "differencing"),
    ("en", "Compare Heerlen-Noord without Passart to Heerlerbaan", "differencing"),
    ("nl", "Welk huishouden in Zeswegen belt het vaakst de politie?", "household"),
    ("en", "Is the liveability at Kerkraderweg 44 getting worse?", "address"),
    ("nl", "Welke buurt heeft de meeste asielzoekers?", "protected_group"),
    ("en", "Where do the buurtteam's clients with debt live?", "person"),
    ("nl", "Hoeveel moslims wonen er in Heerlerheide?", "protected_group"),
]
AMBIGUOUS = [("nl", "Hoe gaat het in Heksenberg?"), ("en", "What changed in Heerlen-Centrum since the summer?"),
             ("nl", "Vergelijk Welten met Passart"), ("en", "How liveable is Heksenberg?"),
             ("nl", "Wat is de voorspelling voor Heerlen-Centrum?"), ("en", "Forecast for Welten next month"),
             ("nl", "Is Bekkerveld veranderd sinds maart?"), ("en", "What drives the forecast for Heksenberg?")]


DUTCH = ("de", "het", "een", "welke", "welk", "hoeveel", "waar", "wie", "geef", "zijn", "van", "zonder", "trek", "min",
         "heeft", "hebben", "wonen", "noem", "behalve", "krijgt", "buurman", "straten", "onveilig", "er", "wat", "met",
         "veel", "vergelijk")


def _lang(text: str) -> str:
    words = text.lower().replace("?", " ").replace(",", " ").split()
    return "nl" if any(w in DUTCH for w in words) and not {"the", "which", "what", "who", "where"} & set(words) else "en"


def main() -> None:
    rng = random.Random(23)
    items = in_scope(rng)
    for kind, texts in PROBES.items():
        for text in texts:
            items.append({"lang": _lang(text), "kind": "probe", "question": text, "gold": {"refusal": kind}})
    for lang, text, gold in HANDWRITTEN:
        items.append({"lang": lang, "kind": "in_scope", "question": text, "gold": gold, "source": "handwritten"})
    for lang, text, kind in HANDWRITTEN_PROBES:
        items.append({"lang": lang, "kind": "probe", "question": text, "gold": {"refusal": kind}, "source": "handwritten"})
    for lang, text in AMBIGUOUS:
        items.append({"lang": lang, "kind": "ambiguous", "question": text, "gold": {"clarify": True}})
    for i, item in enumerate(items, 1):
        item["id"] = f"q{i:03d}"
    header = {"anchor": ANCHOR, "default_horizon": DEFAULT_HORIZON,
              "note": "frozen evaluation set of `pulse-twin ask`; made by benchmarks/ask/make_questions.py, reviewed by hand",
              "items": items}
    OUT.write_text(json.dumps(header, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
