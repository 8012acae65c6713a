"""Reading a Debian package (tlbook.data.debian): the data tar inside its ar archive, and a damaged or crafted
ar header refused at once, by name."""

import pytest
from hang_guard import no_hang
from test_photos import STAMPS, make_deb  # a small stamps package, built as Tux Paint's is

from tlbook import data
from tlbook.data import debian


def test_data_tar_streams_the_data_member_of_a_package(tmp_path):
    deb = make_deb(tmp_path / "stamps.deb", STAMPS)
    with debian.data_tar(deb) as tar:
        names = [member.name for member in tar]
    assert names == [f"./usr/share/tuxpaint/stamps/{stamp}" for stamp in STAMPS]
    text = tmp_path / "notes.deb"
    text.write_text("not an ar archive")
    with pytest.raises(ValueError, match=r"notes\.deb is not a Debian package"), debian.data_tar(text):
        pass


def _with_ar_header(deb, index, **fields):
    """``deb`` with fields of its ``index``-th ar header replaced: ``name`` (16 bytes), ``size``
    (10 bytes) or ``end`` (2 bytes), each given as bytes and padded with spaces."""
    raw = bytearray(deb.read_bytes())
    offset = 8
    for _ in range(index):
        offset += 60 + int(raw[offset + 48 : offset + 58])
        offset += offset % 2
    for field, (start, width) in {"name": (0, 16), "size": (48, 10), "end": (58, 2)}.items():
        if field in fields:
            raw[offset + start : offset + start + width] = fields[field].ljust(width)
    deb.write_bytes(bytes(raw))
    return deb


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": b"-64"}, "ar header at byte 8 is damaged"),  # would seek backwards, forever
        ({"size": b"9999999999"}, "claims 9,999,999,999 bytes, more than the file holds"),
        ({"size": b"12abc"}, "ar header at byte 8 is damaged"),
        ({"end": b"!!"}, "ar header at byte 8 is damaged"),
        ({"name": b"\xff\xfe-binary/"}, "ar header at byte 8 is damaged"),
    ],
)
def test_a_damaged_or_crafted_ar_header_is_refused_by_name_at_once(tmp_path, fields, message):
    deb = _with_ar_header(make_deb(tmp_path / "crafted.deb", STAMPS), 0, **fields)
    with no_hang(), pytest.raises(ValueError, match=rf"crafted\.deb: .*{message}"):
        data.stamp_photos(deb)
