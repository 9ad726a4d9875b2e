"""``dronectl keys``: the nests' MAVLink signing keys.

dronectl keys provision NEST --trusted-link   give a nest with no key one (SETUP_SIGNING, sent once
                                              unsigned over the link you declare trusted), check it
                                              answers signed, store the key
dronectl keys rotate NEST                     a new key, asked for with a request signed with the
                                              current one; stored once the nest answers with it
dronectl keys status [--json]                 per nest: policy, key file, whether it is usable

Provisioning and rotation open the nest's own endpoint (its ``mavlink_url`` in the city config, or
``--link``), so they run while ``dronectl up`` is stopped (the service holds that port). Keys are
kept in ``--keys`` (default ``var/keys/mavlink``: 0700, one 0600 file per nest), never in the
config, never printed. While the service runs, each nest's state says whether its link is signed,
when a frame of the nest last verified and what it refused by reason (``link`` in ``dronectl
status --json``; ``dronectl status N`` prints it as a ``mavlink:`` line).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import sys
from typing import Any

from adapters.fleet import parse_endpoint
from adapters.mavlink.keystore import DEFAULT_DIRECTORY, KeyFileError, KeyStore
from adapters.mavlink.link_security import LinkSecurity, SigningPolicy
from adapters.mavlink.router import Router
from adapters.mavlink.signing import new_key
from dronectl.domain.config import CityConfig, ConfigError, NestConfig, load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dronectl keys", description="The nests' MAVLink signing keys.")
    parser.add_argument("--config", default=None, help="city config file (default: the shipped one)")
    parser.add_argument("--keys", default=str(DEFAULT_DIRECTORY), help="the key directory (0700)")
    sub = parser.add_subparsers(dest="command", required=True)
    provision = sub.add_parser("provision", help="give a nest that has no key one")
    provision.add_argument("nest", type=int)
    provision.add_argument(
        "--trusted-link",
        action="store_true",
        help="you declare the link to the nest trusted: the key crosses it in clear, once",
    )
    rotate = sub.add_parser(
        "rotate", help="replace a nest's key (the request is signed with the current one)"
    )
    rotate.add_argument("nest", type=int)
    for command in (provision, rotate):
        command.add_argument("--link", default=None, help="MAVLink URL to use instead of the config's")
        command.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the nest")
    status = sub.add_parser("status", help="which nests have a key, and their policy")
    status.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE
    store = KeyStore(args.keys)
    if args.command == "status":
        return _status(config, store, args.json)
    try:
        nest = config.nest(args.nest)
    except KeyError as exc:
        sys.stderr.write(f"{exc.args[0]}\n")
        return EXIT_USAGE
    try:
        current = store.load(nest.mav_system_id, nest_id=_key_nest(nest))
    except KeyFileError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_FAILED
    if args.command == "provision":
        if current is not None:
            sys.stderr.write(f"nest {nest.id} already has a key: use `dronectl keys rotate {nest.id}`\n")
            return EXIT_USAGE
        if not args.trusted_link:
            sys.stderr.write(
                "the key crosses the link in clear: provision only over a link you trust (a cable, the "
                "dock's own network), and say so with --trusted-link\n"
            )
            return EXIT_USAGE
    elif current is None:
        sys.stderr.write(f"nest {nest.id} has no key: provision it first\n")
        return EXIT_USAGE
    url = args.link or config.mavlink_url(nest)
    try:
        asyncio.run(_provision(url, nest, current, store, args.timeout))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            sys.stderr.write(f"{url} is in use: stop `dronectl up` first (it holds the nest's endpoint)\n")
        else:
            sys.stderr.write(f"{url}: {exc}\n")
        return EXIT_FAILED
    except TimeoutError:
        sys.stderr.write(
            f"nest {nest.id} did not answer with the new key within {args.timeout:g} s; nothing stored\n"
        )
        return EXIT_FAILED
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE
    where = store.path(nest.mav_system_id, nest_id=_key_nest(nest))
    sys.stdout.write(f"nest {nest.id}: signed with a new key, stored in {where}\n")
    return EXIT_OK


def _key_nest(nest: NestConfig) -> int | None:
    """A nest whose link is its own MAVLink network keeps its key under its number."""
    return nest.id if nest.own_mavlink_network else None


async def _provision(
    url: str, nest: NestConfig, current: bytes | None, store: KeyStore, timeout_s: float
) -> None:
    endpoint = parse_endpoint(url)
    key = new_key()
    system_id = nest.mav_system_id
    async with Router() as router:
        await router.add_nest(system_id, endpoint.bind, endpoint.peer, LinkSecurity(current))
        await router.provision(system_id, key, timeout_s)
    store.store(system_id, key, nest_id=_key_nest(nest))


def _status(config: CityConfig, store: KeyStore, as_json: bool) -> int:
    rows: list[dict[str, Any]] = []
    for nest in config.nests:
        sysid = nest.mav_system_id
        problem = None
        try:
            has_key = store.load(sysid, nest_id=_key_nest(nest)) is not None
        except KeyFileError as exc:
            has_key, problem = False, str(exc)
        if nest.mavlink_signing is not None:
            policy = SigningPolicy(nest.mavlink_signing)
        else:
            policy = SigningPolicy.REQUIRED if has_key else SigningPolicy.WHEN_PROVISIONED
        rows.append(
            {
                "nest": nest.id,
                "system_id": sysid,
                "policy": str(policy),
                "key": has_key,
                "signs": has_key and policy != SigningPolicy.OFF,
                "key_file": str(store.path(sysid, nest_id=_key_nest(nest))) if has_key else None,
                "problem": problem,
            }
        )
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return EXIT_OK
    for row in rows:
        state = "signed" if row["signs"] else "UNSIGNED"
        extra = f"  {row['problem']}" if row["problem"] else ""
        sys.stdout.write(f"nest {row['nest']:>2}  {state:<8}  policy {row['policy']:<16}{extra}\n")
    return EXIT_OK
