"""`pulse-twin twin`: the twin's view over time of a run (`build`), hosted for city staff (`serve`, `user add`)."""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from federation.commands.options import add_json
from federation.errors import ConfigError
from federation.output import emit_json, progress, result


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "twin", help="the twin's view over time of a run: one offline HTML page, or served to city staff",
        description="The twin's view of a finished run: every released month and forecast horizon, a profile "
                    "per buurt, wijk, stadsdeel and the city, intervals per area, changes beyond the noise, "
                    "early warning only where the model has skill, Dutch first. Post-processing only.")
    sub = p.add_subparsers(dest="twin_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="write RUN_DIR/twin/twin.html (one file, no external request)",
                       description="Writes one self-contained HTML page (script, style and data inline; it requests "
                                   "nothing) from the run's artefacts and the public data shipped with PULSE-TWIN.")
    b.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a completed run directory (runs/<run>)")
    b.add_argument("--out", type=Path, default=None, help="the HTML file to write (default RUN_DIR/twin/twin.html)")
    b.add_argument("--city", default="heerlen", help="groupings and settings: configs/twin/<city>.yaml")
    b.add_argument("--postcodes", type=Path, default=None,
                   help="a CSV `postcode,area_code` (PC4 or PC6 to buurt code) for the postcode search")
    add_json(b)
    b.set_defaults(func=run_build)

    s = sub.add_parser("serve", help="serve the twin pages of RUNS_DIR over HTTPS, with login, read-only",
                       description="A read-only HTTPS server over the runs' twin pages, reports and forecast files "
                                   "(only those: no node directory, raw data or ledger is reachable), for users of "
                                   "USERS (salted scrypt hashes), with the lab's certificate, and an access log. "
                                   "Build each run's page first with `pulse-twin twin build`. Ctrl-C stops it.")
    s.add_argument("runs_dir", type=Path, metavar="RUNS_DIR", help="the directory holding run directories")
    s.add_argument("--users", type=Path, required=True, help="the users file of `pulse-twin twin user add`")
    s.add_argument("--cert", type=Path, required=True, help="the lab's TLS certificate (PEM)")
    s.add_argument("--key", type=Path, required=True, help="its private key (PEM)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8443, help="port (default 8443; 0: a free one)")
    s.add_argument("--access-log", type=Path, default=Path("twin-access.log"),
                   help="append one line per request here (default ./twin-access.log)")
    s.set_defaults(func=run_serve)

    u = sub.add_parser("user", help="manage the users of `twin serve`",
                       description="The users of `pulse-twin twin serve`: each a name and a salted scrypt hash of "
                                   "their password in a JSON users file (mode 0600); no password is stored.")
    us = u.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = us.add_parser("add", help="add a user or set a user's password (asked twice, or read from stdin)",
                      description="Adds NAME to USERS, or sets NAME's new password: asked twice on the terminal "
                                  "(or one line from stdin with --password-stdin), at least 12 characters, stored "
                                  "as a salted scrypt hash.")
    a.add_argument("users", type=Path, metavar="USERS", help="the users file (created, mode 0600)")
    a.add_argument("name", metavar="NAME", help="the user's login name (letters, digits and _.@-)")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    a.set_defaults(func=run_user_add)


def run_build(args: argparse.Namespace) -> int:
    from server.twin.build import twin_data, write_twin
    from server.twin.geography import groupings

    progress(f"twin: reading {args.run_dir}")
    data = twin_data(args.run_dir, groupings(args.city), args.postcodes)
    path = write_twin(data, args.out or args.run_dir / "twin" / "twin.html")
    released = sum(1 for m in data["months"] if m["kind"] == "released")
    horizons = [m["horizon"] for m in data["months"] if m["kind"] == "forecast"]
    if args.json:
        emit_json({"twin": str(path.resolve()), "released_months": released, "horizons": horizons,
                   "coverage": data["coverage"], "bands": data["bands"],
                   "warnings_shown": data["warnings"].get("shown", False)})
        return 0
    result(f"{released} released months, forecast horizons {', '.join(map(str, horizons)) or 'none'}, "
           f"{sum(1 for p in data['places'] if p['level'] == 'buurt')} buurten")
    for h, c in data["coverage"].items():
        if c:
            bands = ", ".join(f"band {b['band'] + 1} {100 * b['coverage'][h]['share']:.1f}%"
                              for b in data["bands"] if b["coverage"].get(h))
            result(f"interval coverage at horizon {h}: {100 * c['overall']:.1f}% of {c['n']} held-out forecasts "
                   f"(target {100 * c['level']:.0f}%; by population band, smallest first: {bands})")
    if not data["postcodes"]:
        result("note: no postcode table given (--postcodes): the page searches by name only")
    result(f"twin: {path.resolve()}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from server.twin.serve import make_server

    server = make_server(args.runs_dir, args.users, args.cert, args.key, args.access_log, args.host, args.port)
    host, port = server.server_address[:2]
    result(f"twin: serving {args.runs_dir.resolve()} at https://{host}:{port}/ (login required; "
           f"access log {args.access_log.resolve()}); Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        result("twin: stopped")
    finally:
        server.server_close()
    return 0


def run_user_add(args: argparse.Namespace) -> int:
    from server.twin.serve import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ; nothing stored")
    add_user(args.users, args.name, password)
    result(f"user {args.name} stored in {args.users} (salted scrypt hash)")
    return 0
