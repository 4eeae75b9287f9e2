"""Small synthetic camera snapshots for simulated violations, as PNG bytes.

A scene (wall, floor, the subject, the detector's box in the type's colour) with the camera
number and time burnt in, the way a real camera overlay shows them. Written with the
standard library (zlib) rather than Pillow: a few flat shapes in a 160x120 frame do not
justify a compiled dependency in every deployment that ships the demo command.
"""

import struct
import zlib
from dataclasses import dataclass

WIDTH, HEIGHT = 160, 120

Color = tuple[int, int, int]

WALL: Color = (74, 80, 89)
FLOOR: Color = (52, 56, 62)
OVERLAY: Color = (16, 18, 20)
TEXT: Color = (236, 239, 241)
SKIN: Color = (222, 184, 150)
OVERALLS: Color = (40, 70, 140)
HI_VIS: Color = (198, 255, 0)
HELMET: Color = (250, 200, 20)
MACHINE: Color = (120, 128, 138)
HAZARD: Color = (250, 200, 20)

# Pixel glyphs (rows, top to bottom) for what the overlay writes: "CAM 07  14:03:22".
_GLYPHS = {
    "0": "111 101 101 101 111",
    "1": "010 110 010 010 111",
    "2": "111 001 111 100 111",
    "3": "111 001 111 001 111",
    "4": "101 101 111 001 001",
    "5": "111 100 111 001 111",
    "6": "111 100 111 101 111",
    "7": "111 001 001 001 001",
    "8": "111 101 111 101 111",
    "9": "111 101 111 001 111",
    "C": "111 100 100 100 111",
    "A": "010 101 111 101 101",
    "M": "10001 11011 10101 10001 10001",
    ":": "0 1 0 1 0",
    " ": "00 00 00 00 00",
}


class Canvas:
    """An RGB frame to draw flat shapes on; everything is clipped to the frame."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, fill: Color = WALL) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(fill) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.width), min(y + h, self.height)
        if x0 >= x1:
            return
        row = bytes(color) * (x1 - x0)
        for line in range(y0, y1):
            start = (line * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def outline(self, x: int, y: int, w: int, h: int, color: Color, thickness: int = 2) -> None:
        self.rect(x, y, w, thickness, color)
        self.rect(x, y + h - thickness, w, thickness, color)
        self.rect(x, y, thickness, h, color)
        self.rect(x + w - thickness, y, thickness, h, color)

    def disc(self, cx: int, cy: int, r: int, color: Color) -> None:
        for dy in range(-r, r + 1):
            half = int((r * r - dy * dy) ** 0.5)
            self.rect(cx - half, cy + dy, 2 * half + 1, 1, color)

    def text(self, x: int, y: int, text: str, color: Color = TEXT, scale: int = 2) -> None:
        for char in text:
            rows = _GLYPHS.get(char, _GLYPHS[" "]).split()
            for row, bits in enumerate(rows):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        self.rect(x + col * scale, y + row * scale, scale, scale, color)
            x += (len(rows[0]) + 1) * scale

    def png(self) -> bytes:
        """The frame as an 8-bit RGB PNG (filter 0 on every row)."""
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + self.pixels[y * stride : (y + 1) * stride] for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b"")
        )


def text_width(text: str, scale: int = 2) -> int:
    return sum((len(_GLYPHS.get(c, _GLYPHS[" "]).split()[0]) + 1) * scale for c in text) - scale


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@dataclass(frozen=True)
class Scene:
    """What one snapshot shows; `subject_x` moves the subject so frames differ."""

    kind: str  # "zone", "lockout" or "ppe"; anything else draws a person and the box
    camera_id: int
    clock: str  # "HH:MM:SS"
    subject_x: int
    box_color: Color


def _person(canvas: Canvas, x: int, floor_y: int, *, helmet: bool, vest: bool) -> tuple:
    """Draw a standing worker with feet on `floor_y`; returns its bounding box."""
    canvas.rect(x - 7, floor_y - 34, 14, 34, OVERALLS)  # body and legs
    canvas.rect(x - 1, floor_y - 14, 2, 14, FLOOR)  # gap between the legs
    if vest:
        canvas.rect(x - 7, floor_y - 34, 14, 12, HI_VIS)
    canvas.disc(x, floor_y - 41, 6, SKIN)
    if helmet:
        canvas.rect(x - 7, floor_y - 48, 15, 5, HELMET)
    return (x - 11, floor_y - 52, 23, 55)


def draw(scene: Scene) -> bytes:
    """The PNG bytes of `scene`."""
    canvas = Canvas()
    floor_y = 78
    canvas.rect(0, floor_y, WIDTH, HEIGHT - floor_y, FLOOR)
    x = scene.subject_x
    if scene.kind == "zone":
        # A worker inside the hazard-striped restricted zone on the floor.
        for stripe in range(0, WIDTH, 12):
            canvas.rect(stripe, floor_y + 6, 6, 3, HAZARD)
            canvas.rect(stripe + 6, floor_y + 34, 6, 3, HAZARD)
        box = _person(canvas, x, floor_y + 26, helmet=True, vest=True)
    elif scene.kind == "lockout":
        # A machine with its panel open, no lock on the isolator, and someone at it.
        left = x - 36
        canvas.rect(left, floor_y - 40, 52, 48, MACHINE)
        canvas.rect(left + 6, floor_y - 34, 20, 26, OVERLAY)
        canvas.rect(left + 34, floor_y - 28, 10, 10, HAZARD)
        _person(canvas, x + 28, floor_y + 12, helmet=True, vest=True)
        box = (left - 4, floor_y - 44, 60, 56)
    else:
        box = _person(canvas, x, floor_y + 22, helmet=scene.kind != "ppe", vest=True)
    canvas.outline(*box, scene.box_color)
    canvas.rect(0, 0, WIDTH, 14, OVERLAY)
    canvas.text(3, 2, f"CAM {scene.camera_id:02d}")
    canvas.text(WIDTH - 3 - text_width(scene.clock), 2, scene.clock)
    return canvas.png()
