"""What a frame weighs on the wire (dashboard.frames): plain functions, no server."""

from dashboard.frames import frame_bytes


def test_an_ascii_frame_weighs_its_length():
    assert frame_bytes('{"seq":1}') == 9


def test_a_frame_weighs_its_utf8_bytes_not_its_characters():
    assert frame_bytes("Kamera 2 – Überwachung") == len("Kamera 2 – Überwachung".encode())


def test_a_lone_surrogate_is_measured_rather_than_failing():
    assert frame_bytes("a\ud800") == 4


def test_the_remembered_size_is_never_another_texts():
    # Equal-length texts of different weight, one after the other, each measured right.
    first, second = "é" * 10, "€" * 10
    assert frame_bytes(first) == 20
    assert frame_bytes(first) == 20  # the remembered one
    assert frame_bytes(second) == 30
    assert frame_bytes("".join(["é"] * 10)) == 20  # an equal text that is another object
