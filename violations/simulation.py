"""Believable simulated violations: which camera sees what, and when (no IO here).

Six cameras, each watching a place where one kind of violation is common and the others
happen now and then, some busier than others. Arrivals are a Poisson process at the mean
rate asked for, so events come in uneven bursts and lulls like the real thing.
"""

import datetime
import random
from dataclasses import dataclass

from violations import snapshots

HUMAN = "violation_humandetections"
LOTO = "violation_lotodetections"
PPE = "violation_ppedetections"


@dataclass(frozen=True)
class Camera:
    camera_id: int
    weight: float  # how busy it is, relative to the others
    odds: dict[str, float]  # table -> relative likelihood; other tables count 0.5


CAMERAS = [
    Camera(1, 3.0, {HUMAN: 8, PPE: 2, LOTO: 0.5}),  # robot cell, restricted zone
    Camera(2, 2.0, {HUMAN: 6, PPE: 3, LOTO: 1}),  # press line
    Camera(3, 1.5, {LOTO: 8, PPE: 2, HUMAN: 1}),  # maintenance bay
    Camera(4, 1.0, {LOTO: 6, HUMAN: 2, PPE: 2}),  # conveyor drive room
    Camera(5, 2.5, {PPE: 8, HUMAN: 1, LOTO: 0.5}),  # warehouse entrance
    Camera(6, 1.0, {PPE: 5, HUMAN: 3, LOTO: 1}),  # loading dock
]
OTHER_TABLE_ODDS = 0.5

# What the snapshot draws per table, and the detector box colour.
_SCENES = {
    HUMAN: ("zone", (230, 57, 70)),
    LOTO: ("lockout", (255, 140, 0)),
    PPE: ("ppe", (255, 214, 10)),
}
_OTHER_SCENE = ("other", (0, 200, 255))


@dataclass(frozen=True)
class SimulatedViolation:
    table: str
    camera_id: int
    when: datetime.datetime  # local time of the sighting

    def snapshot(self, rng: random.Random) -> bytes:
        kind, color = _SCENES.get(self.table, _OTHER_SCENE)
        scene = snapshots.Scene(
            kind=kind,
            camera_id=self.camera_id,
            clock=self.when.strftime("%H:%M:%S"),
            subject_x=rng.randint(40, snapshots.WIDTH - 40),
            box_color=color,
        )
        return snapshots.draw(scene)

    def image_name(self) -> str:
        """A storage name under MEDIA_ROOT; the storage makes it unique if taken."""
        stamp = self.when.strftime("%Y%m%d-%H%M%S")
        return f"simulated/{self.table}/cam{self.camera_id:02d}-{stamp}.png"


def next_violation(
    rng: random.Random, tables: list[str], when: datetime.datetime
) -> SimulatedViolation:
    """One sighting at `when`: a camera by how busy it is, then a type by that camera's odds."""
    if not tables:
        raise ValueError("no violation tables to simulate")
    camera = rng.choices(CAMERAS, weights=[c.weight for c in CAMERAS])[0]
    odds = [camera.odds.get(table, OTHER_TABLE_ODDS) for table in tables]
    table = rng.choices(tables, weights=odds)[0]
    return SimulatedViolation(table=table, camera_id=camera.camera_id, when=when)


def gaps(rng: random.Random, rate: float):
    """Seconds between events: 0 for the first (the dashboard reacts at once), then exponential
    gaps averaging 1/rate."""
    if rate <= 0:
        raise ValueError("rate must be greater than 0")
    yield 0.0
    while True:
        yield rng.expovariate(rate)
