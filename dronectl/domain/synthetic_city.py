"""A synthetic city config with N nests, for scaling tests and benches (issue 15).

The nests stand on a square grid (``spacing_m`` apart) centred on ``centre``; the geofence is
the grid's bounding box with a margin, one no-fly zone sits in the middle of a grid cell (clear
of every pad and of the straight legs along the grid lines), and two patrol stretches run along
grid lines between pads. The rest of the settings are the shipped config's defaults. The result
is the config's own text (YAML), so it goes through exactly the checks a hand-written file does:
``dronectl config generate --nests 256 > city.yaml && dronectl config check city.yaml``.

Pure: no I/O. ``synthetic_city`` gives the mapping, ``synthetic_city_yaml`` its YAML text.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

DEFAULT_CENTRE = (43.8800, 125.3200)  # Changchun, where the simulator's synthetic streets are
DEFAULT_SPACING_M = 800.0
MARGIN_M = 1500.0
_M_PER_DEG_LAT = 111_320.0


def grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns of the smallest near-square grid that holds ``count`` nests."""
    if count < 1:
        raise ValueError("a city needs at least one nest")
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    return rows, cols


def synthetic_city(
    count: int,
    *,
    centre: tuple[float, float] = DEFAULT_CENTRE,
    spacing_m: float = DEFAULT_SPACING_M,
    client_port_base: int = 14540,
    sim_port_base: int = 18570,
    name: str | None = None,
) -> dict[str, Any]:
    """The config mapping of a city with ``count`` nests on a grid (nest 1 at the south-west)."""
    if spacing_m < 200.0:
        raise ValueError("nests closer than 200 m apart leave no room for the no-fly zone")
    rows, cols = grid_shape(count)
    lat0, lon0 = centre
    dlat = spacing_m / _M_PER_DEG_LAT
    dlon = spacing_m / (_M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    south = lat0 - dlat * (rows - 1) / 2
    west = lon0 - dlon * (cols - 1) / 2

    def at(row: float, col: float) -> tuple[float, float]:
        return round(south + row * dlat, 6), round(west + col * dlon, 6)

    nests = []
    for i in range(count):
        row, col = divmod(i, cols)
        lat, lon = at(row, col)
        nests.append(
            {
                "id": i + 1,
                "name": f"Grid {row + 1:02d}-{col + 1:02d}",
                "lat": lat,
                "lon": lon,
                "ground_alt_m": 220.0,
            }
        )
    margin_lat = MARGIN_M / _M_PER_DEG_LAT
    margin_lon = margin_lat * dlon / dlat
    north = south + dlat * (rows - 1)
    east = west + dlon * (cols - 1)
    fence = [
        [round(south - margin_lat, 6), round(west - margin_lon, 6)],
        [round(south - margin_lat, 6), round(east + margin_lon, 6)],
        [round(north + margin_lat, 6), round(east + margin_lon, 6)],
        [round(north + margin_lat, 6), round(west - margin_lon, 6)],
    ]
    # a square of a fifth of the spacing in the middle of the grid's central cell (or, with a
    # single row or column, beside it): it touches no pad and no grid line
    mid_row = math.floor((rows - 1) / 2) + 0.5 if rows > 1 else 0.5
    mid_col = math.floor((cols - 1) / 2) + 0.5 if cols > 1 else 0.5
    zlat, zlon = at(mid_row, mid_col)
    half_lat, half_lon = dlat / 10, dlon / 10
    zone = [
        [round(zlat - half_lat, 6), round(zlon - half_lon, 6)],
        [round(zlat - half_lat, 6), round(zlon + half_lon, 6)],
        [round(zlat + half_lat, 6), round(zlon + half_lon, 6)],
        [round(zlat + half_lat, 6), round(zlon - half_lon, 6)],
    ]
    # patrols along the first row (east-west) and the first column (north-south), pad to pad
    last_col = min(cols - 1, 2)
    last_row = min(rows - 1, 2)
    stretches = [
        {
            "id": "grid-row-1",
            "name": "Grid row 1",
            "points": [list(at(0, 0)), list(at(0, last_col if last_col > 0 else 0.5))],
        },
        {
            "id": "grid-col-1",
            "name": "Grid column 1",
            "points": [list(at(0, 0)), list(at(last_row if last_row > 0 else 0.5, 0))],
        },
    ]
    return {
        "city": name or f"Synthetic city ({count} nests)",
        "timezone": "Asia/Shanghai",
        "nests": nests,
        "mavlink": {
            "client_port_base": client_port_base,
            "sim_port_base": sim_port_base,
            "host": "127.0.0.1",
        },
        "safety": {
            "altitude_ceiling_m": 120.0,
            "default_cruise_alt_m": 60.0,
            "min_battery_reserve_pct": 25.0,
            "separation_m": 150.0,
            "max_range_m": 12000.0,
        },
        "geofence": {"name": "Synthetic operating area", "polygon": fence},
        "no_fly_zones": [{"name": "Synthetic no-fly zone", "polygon": zone}],
        "patrols": {
            "stretches": stretches,
            "black_ice": {"stretches": ["grid-row-1"]},
            "congestion": {"stretches": ["grid-col-1"]},
        },
    }


def synthetic_city_yaml(count: int, **kwargs: Any) -> str:
    """``synthetic_city`` as the text of a config file, with a header saying it was generated."""
    data = synthetic_city(count, **kwargs)
    header = (
        f"# GENERATED by `dronectl config generate --nests {count}` (dronectl/domain/synthetic_city.py):\n"
        "# a synthetic city for scaling tests and benches, nests on a grid. Do not edit; regenerate.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
