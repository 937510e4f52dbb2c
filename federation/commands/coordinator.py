"""`pulse-twin coordinator`: the lab's SuperLink (start) and the nodes it lets in (register)."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.output import log, progress, result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coordinator",
        help="coordinator: run the lab's SuperLink, register node keys",
        description=(
            "The coordinating lab's side of a federation. `start` runs the SuperLink in the foreground (TLS with "
            "the federation CA, node authentication, a persistent database, runtime dependency installation "
            "off); `register` lets a node's public key in. Everything lives in --coordinator-dir."
        ),
    )
    sub = parser.add_subparsers(dest="coordinator_command", metavar="ACTION", required=True)
    start = sub.add_parser(
        "start",
        help="run the SuperLink until Ctrl-C or SIGTERM",
        description=(
            "Run the SuperLink bound to --address. On first start the federation CA and the SuperLink's "
            "certificate are made in COORDINATOR_DIR/pki (give pki/ca.crt, which is public, to every node). "
            "Registered node keys and runs are kept in COORDINATOR_DIR/superlink.db across restarts. Exit code "
            "130 after SIGINT or SIGTERM (every process it started is stopped); 1 if the SuperLink exits on its own."
        ),
    )
    start.add_argument("--coordinator-dir", required=True, type=Path, help="the coordinator's directory")
    start.add_argument("--address", default="127.0.0.1:9092",
                       help="HOST:PORT the SuperLink listens on (default 127.0.0.1:9092; 0.0.0.0:PORT for every "
                            "interface). Nodes connect to it; `flwr` and `pulse-twin run` use the same port")
    start.add_argument("--host", action="append", default=[], metavar="NAME_OR_IP",
                       help="a further DNS name or IP address nodes reach the SuperLink at, for its certificate "
                            "(repeatable; used when the certificate is first made)")
    start.add_argument("--insecure", action="store_true", help="no TLS and no node authentication (debugging only)")
    start.set_defaults(func=run_start)

    reg = sub.add_parser(
        "register",
        help="let a node in: register its public key with the SuperLink",
        description="Register a node's public key (its keys/node.pub) with the running SuperLink; an "
                    "unregistered node is refused when it connects.",
    )
    reg.add_argument("public_key", type=Path, metavar="KEY.pub", help="the node's public key file")
    reg.add_argument("--coordinator-dir", required=True, type=Path, help="the coordinator's directory")
    reg.set_defaults(func=run_register)


def run_start(args: argparse.Namespace) -> int:
    from server.coordinator import Coordinator, serve

    if args.insecure:
        log.warning("WARNING: --insecure: no TLS and no node authentication; anyone who reaches the port can join or "
                    "listen.")
    return serve(Coordinator(args.coordinator_dir.resolve()), args.address, args.insecure, tuple(args.host),
                 say=progress)


def run_register(args: argparse.Namespace) -> int:
    from server.coordinator import ALREADY_REGISTERED, Coordinator, register_node

    answer = register_node(Coordinator(args.coordinator_dir.resolve()), args.public_key)
    result(f"{args.public_key}: {answer}" if answer == ALREADY_REGISTERED else f"registered {args.public_key}: {answer}")
    return 0
