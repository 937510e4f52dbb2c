"""`pulse-twin pki`: the coordinator's certificate authority and the SuperLink's TLS certificate."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.pki import DEFAULT_HOSTS, create_ca, create_superlink_cert
from federation.output import result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pki",
        help="coordinator: create the federation's CA and the SuperLink certificate",
        description=(
            "Public-key infrastructure of a PULSE-TWIN federation, run by the coordinator. Nodes make "
            "their own key pairs with `pulse-twin node init` and send only the public key."
        ),
    )
    sub = parser.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    init = sub.add_parser(
        "init",
        help="create a CA and a SuperLink TLS certificate signed by it",
        description=(
            "Create ca.crt/ca.key (the federation's CA) and server.pem/server.key (the SuperLink's TLS "
            "certificate, with a SAN for every --host) in COORDINATOR_DIR/pki, where `pulse-twin coordinator "
            "start --coordinator-dir COORDINATOR_DIR` uses them. Private keys are written with mode 0600."
        ),
    )
    init.add_argument("--coordinator-dir", required=True, type=Path,
                      help="the coordinator's directory (the files go to its pki/)")
    init.add_argument(
        "--host", action="append", default=None, metavar="NAME_OR_IP",
        help=f"DNS name or IP address the SuperLink is reached at (repeatable; default: {', '.join(DEFAULT_HOSTS)})",
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA (invalidates every certificate issued by it)")
    init.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    directory: Path = args.coordinator_dir / "pki"
    hosts = tuple(args.host) if args.host else DEFAULT_HOSTS
    ca = create_ca(directory, force=args.force)
    cert_path, key_path = create_superlink_cert(ca, directory, hosts=hosts)
    result(f"Created the federation CA:      {ca.cert_path} (key {ca.key_path}, keep it offline if you can)")
    result(f"Created the SuperLink certificate {cert_path} (key {key_path}) for: {', '.join(hosts)}")
    result("Next steps:")
    result(f"  1. Start the SuperLink with: pulse-twin coordinator start --coordinator-dir {args.coordinator_dir}")
    result(f"  2. Give each node {ca.cert_path.name} (public), as its keys/federation-ca.crt.")
    result("  3. Register each node's public key (keys/node.pub, sent to you by the node) with:")
    result(f"     pulse-twin coordinator register NODE.pub --coordinator-dir {args.coordinator_dir}")
    return 0
