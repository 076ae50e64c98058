"""Meta-Dataset's records read without TensorFlow: framing, CRCs, Examples, specs, sources.

The records are written by `md_writer` (its own CRC-32C and protobuf encoder), so the
reader is checked against the formats, not against itself.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from md_writer import (
    crc32c,
    example,
    field,
    frame,
    jpeg,
    varint,
    write_records,
    write_source,
    write_tiny_metadataset,
)
from PIL import Image

from litekit.data import record_index
from litekit.data.md_spec import load_spec
from litekit.data.metadataset import MetaDatasetSource, decode_image
from litekit.data.tfrecord import masked_crc32c, parse_example, read_record, scan_records


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tiny_metadataset(tmp_path_factory.mktemp("md"))


def test_crc32c_check_value_and_the_writer_agree():
    # The CRC-32C check value (RFC 3720): "123456789" -> 0xE3069283, in both implementations.
    assert crc32c(b"123456789") == 0xE3069283
    data = os.urandom(5000)
    crc = crc32c(data)
    assert masked_crc32c(data) == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_scan_finds_every_record_with_its_offsets(tmp_path):
    records = [b"", b"a", os.urandom(300), os.urandom(70000)]
    path = tmp_path / "x.tfrecords"
    write_records(path, records)
    offsets, lengths = scan_records(path)
    assert lengths.tolist() == [len(r) for r in records]
    expected, position = [], 0
    for r in records:
        expected.append(position + 12)
        position += 16 + len(r)
    assert offsets.tolist() == expected
    for k, r in enumerate(records):
        assert read_record(path, offsets[k], lengths[k], k) == r


def test_one_record_file_and_an_empty_file(tmp_path):
    write_records(tmp_path / "one.tfrecords", [b"only"])
    offsets, lengths = scan_records(tmp_path / "one.tfrecords")
    assert offsets.tolist() == [12] and lengths.tolist() == [4]
    (tmp_path / "empty.tfrecords").write_bytes(b"")
    assert len(scan_records(tmp_path / "empty.tfrecords")[0]) == 0


@pytest.mark.parametrize(
    "damage, phrase",
    [
        (lambda b: b[:-3], "the file ends inside record 1"),
        (lambda b: b[:5], "the file ends inside record 0"),
        (lambda b: b[:8] + bytes([b[8] ^ 1]) + b[9:], "record 0 (byte 0): the CRC of its length"),
        (lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], "record 0 (byte 0): the CRC of its data"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 0x80]), "record 1 (byte 26): the CRC of its data"),
    ],
)
def test_damage_is_named_with_the_record_and_byte(tmp_path, damage, phrase):
    path = tmp_path / "bad.tfrecords"
    path.write_bytes(damage(frame(b"0123456789") + frame(b"abcdef")))
    with pytest.raises(ValueError) as raised:
        scan_records(path)
    message = str(raised.value)
    assert message.startswith(f"record file={str(path)!r}: ") and phrase in message, message
    assert "copy or convert this file again" in message


def test_read_record_checks_the_crc_again(tmp_path):
    path = tmp_path / "x.tfrecords"
    write_records(path, [b"hello world"])
    offsets, lengths = scan_records(path)
    blob = bytearray(path.read_bytes())
    blob[13] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="record 0 .*the CRC of its data"):
        read_record(path, offsets[0], lengths[0], 0)


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("label_first", [True, False])
@pytest.mark.parametrize("label", [0, 7, 300, 2**40, -5])
def test_parse_example_any_encoding(packed, label_first, label):
    image = os.urandom(200)
    features = parse_example(example(image, label, packed=packed, label_first=label_first))
    assert features == {"image": [image], "label": [label]}


def test_parse_example_floats_several_values_and_unknown_fields():
    floats = struct.pack("<2f", 1.5, -2.0)
    float_feature = field(2, field(1, floats))  # packed FloatList
    ints = field(3, field(1, varint(1) + varint(2) + varint(3)))
    entries = [
        (b"f", float_feature),
        (b"ids", ints),
        (b"image", field(1, field(1, b"x") + field(1, b"y"))),
    ]
    features = b"".join(field(1, field(1, k) + field(2, v)) for k, v in entries)
    # an unknown varint field (number 9) in the Example and in Features is skipped
    data = field(1, features + varint(9 << 3) + varint(5)) + varint(9 << 3) + varint(1)
    assert parse_example(data) == {"f": [1.5, -2.0], "ids": [1, 2, 3], "image": [b"x", b"y"]}


def test_spec_plain_bilevel_and_sharded(tree):
    birds = load_spec(tree / "birds")
    assert birds.kind == "DatasetSpecification" and birds.superclasses is None
    assert birds.split_classes == {
        "TRAIN": list(range(8)),
        "VALID": [8, 9, 10],
        "TEST": [11, 12, 13, 14, 15],
    }
    letters = load_spec(tree / "letters")
    assert letters.kind == "BiLevelDatasetSpecification"
    assert letters.superclasses["TRAIN"] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]]
    assert letters.superclasses["VALID"] == [[11, 12, 13, 14, 15]]
    assert letters.superclasses["TEST"] == [list(range(16, 22))]
    assert [p.name for p in letters.class_files(3)] == ["3_0.tfrecords", "3_1.tfrecords"]


def test_hierarchical_spec_reads_the_leaves(tmp_path):
    folder = tmp_path / "ilsvrc"
    folder.mkdir()
    graph = {
        "TRAIN": [
            {"wn_id": "n0", "words": "root", "children_ids": ["n1", "n2"], "parents_ids": []},
            {"wn_id": "n1", "words": "a", "children_ids": [], "parents_ids": ["n0"]},
            {"wn_id": "n2", "words": "b", "children_ids": [], "parents_ids": ["n0"]},
        ],
        "VALID": [{"wn_id": "n3", "words": "c", "children_ids": [], "parents_ids": []}],
        "TEST": [],
    }
    spec = {
        "__class__": "HierarchicalDatasetSpecification", "name": "ilsvrc",
        "split_subgraphs": graph, "class_names": {"0": "n1", "1": "n2", "2": "n3"},
        "images_per_class": {"TRAIN": {"n0": 9, "n1": 4, "n2": 5}, "VALID": {"n3": 6}, "TEST": {}},
        "path": "/x", "file_pattern": "{}.tfrecords",
    }  # fmt: skip
    (folder / "dataset_spec.json").write_text(json.dumps(spec))
    read = load_spec(folder)
    assert read.split_classes == {"TRAIN": [0, 1], "VALID": [2], "TEST": []}
    assert read.images_per_class == {0: 4, 1: 5, 2: 6}


def test_source_items_labels_and_images(tree):
    birds = MetaDatasetSource(tree, "birds", "TRAIN", 32, normalization="metadataset")
    sizes = [12, 9, 14, 10, 11, 8, 9, 12]
    assert len(birds) == sum(sizes)
    assert np.bincount(birds.targets).tolist() == sizes
    image, label = birds[20]
    assert image.shape == (3, 32, 32) and label == birds.targets[20]
    assert -1.0 <= image.min() and image.max() <= 1.0
    test = MetaDatasetSource(tree, "birds", "TEST", 32, normalization="metadataset")
    assert sorted(set(test.targets)) == [11, 12, 13, 14, 15]
    letters = MetaDatasetSource(tree, "letters", "TRAIN", 32, normalization="metadataset")
    assert len(letters) == 66 and letters.superclasses == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]]


def test_sharded_records_are_read_in_shard_order(tree):
    letters = MetaDatasetSource(tree, "letters", "TRAIN", 32, normalization="metadataset")
    of_class = [i for i, t in enumerate(letters.targets) if t == 2]
    files = [letters.files[letters.file_numbers[i]].name for i in of_class]
    assert files == ["2_0.tfrecords"] * 3 + ["2_1.tfrecords"] * 3


def test_decoding_is_meta_datasets(tmp_path):
    """RGB, square bilinear resize with aligned corners and no antialiasing, then
    2 (x / 255 - 0.5); the ImageNet choice subtracts and divides per channel."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(30, 50, 3), dtype=np.uint8)
    buffer = __import__("io").BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")  # lossless: the pixels are known
    data = buffer.getvalue()
    got = decode_image(data, 16, "metadataset")
    # aligned corners: output (i, j) samples input (i (H-1)/(15), j (W-1)/15), bilinearly
    source = torch.from_numpy(pixels).permute(2, 0, 1).double()
    rows = torch.arange(16, dtype=torch.float64) * (30 - 1) / 15
    cols = torch.arange(16, dtype=torch.float64) * (50 - 1) / 15
    r0, c0 = rows.floor().long().clamp(max=28), cols.floor().long().clamp(max=48)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = source[:, r0][:, :, c0] * (1 - fc) + source[:, r0][:, :, c0 + 1] * fc
    bottom = source[:, r0 + 1][:, :, c0] * (1 - fc) + source[:, r0 + 1][:, :, c0 + 1] * fc
    expected = 2 * ((top * (1 - fr) + bottom * fr) / 255 - 0.5)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)
    imagenet = decode_image(data, 16, "imagenet")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(imagenet, ((got + 1) / 2 - mean) / std, atol=1e-5, rtol=0)
    grey = __import__("io").BytesIO()
    Image.fromarray(pixels[:, :, 0]).save(grey, format="PNG")
    decoded = decode_image(grey.getvalue(), 16, "metadataset")
    assert decoded.shape == (3, 16, 16) and torch.equal(decoded[0], decoded[2])


def test_indexes_are_cached_and_rebuilt_when_the_file_changes(tmp_path):
    write_source(tmp_path, "s", {"TRAIN": [3, 3, 3, 3, 3]}, image_size=32)
    MetaDatasetSource(tmp_path, "s", "TRAIN", 32, normalization="metadataset")
    index = tmp_path / "s" / "0.tfrecords.litekit-index"
    assert index.is_file() and index.read_bytes().startswith(b"LKTFIDX1")
    made = index.stat().st_mtime_ns
    MetaDatasetSource(tmp_path, "s", "TRAIN", 32, normalization="metadataset")
    assert index.stat().st_mtime_ns == made  # read, not made again
    # the file changes (one more record): the index is made again and the count checked
    path = tmp_path / "s" / "0.tfrecords"
    path.write_bytes(path.read_bytes() + frame(example(jpeg(np.zeros((8, 8, 3), np.uint8)), 0)))
    with pytest.raises(ValueError, match="class 0 has 4 records, but .* says 3"):
        MetaDatasetSource(tmp_path, "s", "TRAIN", 32, normalization="metadataset")


def test_read_only_records_index_under_the_cache(tmp_path, monkeypatch):
    write_source(tmp_path, "s", {"TRAIN": [3, 3, 3, 3, 3]}, image_size=32)
    folder = tmp_path / "s"
    real_access = os.access
    monkeypatch.setattr(
        record_index.os,
        "access",
        lambda p, mode: False if Path(p) == folder else real_access(p, mode),
    )
    cache = tmp_path / "cache"
    before = sorted(p.name for p in folder.iterdir())
    source = MetaDatasetSource(
        tmp_path, "s", "TRAIN", 32, normalization="metadataset", cache_dir=cache
    )
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written beside them
    assert len(list(cache.rglob("*.litekit-index"))) == 5
    assert source[0][0].shape == (3, 32, 32)


def test_a_file_in_the_way_of_an_index_is_never_overwritten(tmp_path):
    write_source(tmp_path, "s", {"TRAIN": [3, 3, 3, 3, 3]}, image_size=32)
    mine = tmp_path / "s" / "0.tfrecords.litekit-index"
    mine.write_bytes(b"my notes")
    with pytest.raises(ValueError, match="is not one; move it away"):
        MetaDatasetSource(tmp_path, "s", "TRAIN", 32, normalization="metadataset")
    assert mine.read_bytes() == b"my notes"


def test_verify_decodes_every_image(tmp_path):
    good = jpeg(np.full((16, 16, 3), 100, np.uint8))
    # a JPEG whose entropy-coded data is damaged but whose header and end marker are whole
    broken = good[:200] + bytes(len(good) - 202) + b"\xff\xd9"

    def record(image: bytes, label: int) -> bytes:
        return example(broken if label == 2 else image, label)

    write_source(tmp_path, "s", {"TRAIN": [3, 3, 3, 3, 3]}, image_size=32, record=record)
    source = MetaDatasetSource(tmp_path, "s", "TRAIN", 32, normalization="metadataset")
    with pytest.raises(ValueError, match=r"2.tfrecords': record 0: its image cannot be decoded"):
        for i in range(len(source)):
            source[i]
    with pytest.raises(ValueError, match=r"2.tfrecords': record 0: its image cannot be decoded"):
        MetaDatasetSource(tmp_path, "s", "TRAIN", 32, normalization="metadataset", verify=True)


def test_the_library_writer_matches_the_independent_one(tmp_path):
    from litekit.data.md_convert import encode_example, procedural_source
    from litekit.data.md_convert import write_records as library_write

    image = os.urandom(1000)
    for label in (0, 5, 1623):
        assert encode_example(image, label) == example(image, label)
    records = [example(image, 3), b"", os.urandom(50)]
    library_write(tmp_path / "a.tfrecords", records)
    write_records(tmp_path / "b.tfrecords", records)
    assert (tmp_path / "a.tfrecords").read_bytes() == (tmp_path / "b.tfrecords").read_bytes()
    procedural_source(tmp_path / "md", "made", {"TRAIN": 5, "TEST": 5}, 3, image_size=32,
                      superclasses={"TRAIN": [5], "TEST": [5]})  # fmt: skip
    source = MetaDatasetSource(tmp_path / "md", "made", "TEST", 32, normalization="imagenet")
    assert source.classes == [5, 6, 7, 8, 9] and source.superclasses == [[5, 6, 7, 8, 9]]
    assert source[14][0].shape == (3, 32, 32)


def test_a_minimal_spec_written_by_another_tool(tmp_path):
    """No __class__, class_names, name, path or file_pattern: read by its fields."""
    write_source(tmp_path, "s", {"TRAIN": [3] * 5, "TEST": [3] * 5}, image_size=32)
    spec_file = tmp_path / "s" / "dataset_spec.json"
    spec = json.loads(spec_file.read_text())
    minimal = {k: spec[k] for k in ("classes_per_split", "images_per_class")}
    spec_file.write_text(json.dumps(minimal))
    source = MetaDatasetSource(tmp_path, "s", "TEST", 32, normalization="metadataset")
    assert source.classes == [5, 6, 7, 8, 9] and source.spec.class_names[5] == "5"
    assert source.spec.kind == "DatasetSpecification" and len(source) == 15
