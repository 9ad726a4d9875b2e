"""The ``dronectl`` command.

dronectl --version                       the installed version
dronectl up [--broker URL] [--no-sim]   the service (simulator and MQTT broker embedded by default)
dronectl sim [--nests 16] [--speed 10]   the simulated nests (same as python -m sitl)
dronectl config check FILE               validate a city config file
dronectl config generate --nests 256     a synthetic city config (nests on a grid), for scaling
dronectl users add|passwd|remove|list    users, passwords and roles (var/users)
dronectl tokens create|list|revoke       API tokens for machine clients, each bound to a user (var/tokens)
dronectl certs [DIR] [--host NAME]       a private CA and a server certificate for a test install
dronectl keys provision|rotate|status    the nests' MAVLink signing keys (dronectl.app.keys)
dronectl instances --audit URL           live instances (several, on PostgreSQL) and the nests each holds
dronectl evidence export ID --out F.zip  an incident's evidence package; `evidence verify F.zip` checks one
dronectl console [--broker URL]          the interactive pilot console
dronectl launch 7 --to 43.90,125.30      one console command, for scripts (--json; see
                                         dronectl.transports.console.oneshot for the list and exit codes)
"""

from __future__ import annotations

import argparse
import sys

from dronectl import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["up"]:  # nothing else loaded first: a restart is heard by the drones sooner
        from dronectl.app.up import main as up_main

        return up_main(args[1:])
    from dronectl.transports.console.commands import oneshot_names

    parser = argparse.ArgumentParser(prog="dronectl", description="Control service for police drone nests.")
    oneshot = oneshot_names()
    parser.add_argument(
        "command",
        choices=[
            "up",
            "sim",
            "config",
            "users",
            "tokens",
            "certs",
            "keys",
            "console",
            "instances",
            "evidence",
            *oneshot,
        ],
        help="what to run",
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="the command's own arguments")
    parser.add_argument("--version", action="version", version=f"dronectl {__version__}")
    if args and args[0] == "--version":
        parser.parse_args(args[:1])  # prints the version and exits 0
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    ns = parser.parse_args(args[:1])
    rest = args[1:]
    if ns.command == "up":
        from dronectl.app.up import main as up_main

        return up_main(rest)
    if ns.command == "sim":
        from sitl.__main__ import main as sim_main

        return sim_main(rest)
    if ns.command == "users":
        from dronectl.app.users import main as users_main

        return users_main(rest)
    if ns.command == "tokens":
        from dronectl.app.tokens import main as tokens_main

        return tokens_main(rest)
    if ns.command == "certs":
        from dronectl.app.certs import main as certs_main

        return certs_main(rest)
    if ns.command == "keys":
        from dronectl.app.keys import main as keys_main

        return keys_main(rest)
    if ns.command == "instances":
        from dronectl.app.ha import main as instances_main

        return instances_main(rest)
    if ns.command == "evidence":
        from dronectl.app.evidence import main as evidence_main

        return evidence_main(rest)
    if ns.command == "console":
        from dronectl.transports.console.interactive import main as console_main

        return console_main(rest)
    if ns.command in oneshot:
        from dronectl.transports.console.oneshot import main as oneshot_main

        return oneshot_main(ns.command, rest)
    from dronectl.domain.config import main as config_main

    return config_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
