"""The ``dronectl`` command.

dronectl up [--broker URL] [--no-sim]   the service (simulator and MQTT broker embedded by default)
dronectl sim [--nests 16] [--speed 10]   the simulated nests (same as python -m sitl)
dronectl config check FILE               validate a city config file
dronectl console [--broker URL]          the interactive pilot console
dronectl launch 7 --to 43.90,125.30      one console command, for scripts (--json; see
                                         dronectl.console.oneshot for the list and exit codes)
"""

from __future__ import annotations

import argparse
import sys

from dronectl.console.commands import oneshot_names


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="dronectl", description="Control service for police drone nests.")
    oneshot = oneshot_names()
    parser.add_argument("command", choices=["up", "sim", "config", "console", *oneshot], help="what to run")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="the command's own arguments")
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    ns = parser.parse_args(args[:1])
    rest = args[1:]
    if ns.command == "up":
        from dronectl.app import main as up_main

        return up_main(rest)
    if ns.command == "sim":
        from sitl.__main__ import main as sim_main

        return sim_main(rest)
    if ns.command == "console":
        from dronectl.console.interactive import main as console_main

        return console_main(rest)
    if ns.command in oneshot:
        from dronectl.console.oneshot import main as oneshot_main

        return oneshot_main(ns.command, rest)
    from dronectl.config import main as config_main

    return config_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
