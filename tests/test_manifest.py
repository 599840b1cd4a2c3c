"""Manifest parsing and validation: every problem is refused up front, naming the line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from svd_batch.batch.manifest import ManifestError, bundled_manifest, read_manifest


def test_bundled_sample_manifest_lists_existing_images():
    rows = read_manifest(bundled_manifest())
    assert [r.item_id for r in rows] == ["sunset", "boat", "logo"]
    assert all(Path(r.image).is_file() for r in rows)


def test_paths_resolve_relative_to_the_manifest_and_urls_stay(manifest_of, tmp_path):
    path = manifest_of(
        "image,id",
        "a.png,first",
        "sub dir/b é.png,",
        f"{tmp_path}/abs.png,abs",
        "https://example.com/x/cat.jpg?size=2,",
    )
    rows = read_manifest(path)
    assert rows[0].image == str(tmp_path / "data" / "a.png") and rows[0].item_id == "first"
    assert rows[1].image == str(tmp_path / "data" / "sub dir" / "b é.png")
    assert rows[1].item_id == "b_é"  # from the file name, made file-name safe
    assert rows[2].image == f"{tmp_path}/abs.png"
    assert rows[3].image == "https://example.com/x/cat.jpg?size=2" and rows[3].item_id == "cat"


def test_parameter_columns_become_typed_row_overrides(manifest_of):
    rows = read_manifest(manifest_of("image,motion_bucket_id,noise_aug_strength,seed", "a.png,200,0.1,", "b.png,,,7"))
    assert rows[0].overrides == {"motion_bucket_id": 200, "noise_aug_strength": 0.1}
    assert isinstance(rows[0].overrides["motion_bucket_id"], int)
    assert rows[1].overrides == {"seed": 7}


def test_bom_blank_lines_and_padding_are_tolerated(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("\ufeffimage , id\n a.png , x \n,\n\nb.png,y\n".encode())
    assert [(r.item_id, Path(r.image).name) for r in read_manifest(path)] == [("x", "a.png"), ("y", "b.png")]


@pytest.mark.parametrize(
    "header,rows,expected",
    [
        ("image,colour", ["a.png,red"], r"unknown column\(s\) 'colour'"),
        ("path,id", ["a.png,x"], r"unknown column\(s\) 'path'"),
        ("id", ["x"], "no 'image' column"),
        (
            "image,motion_bucket_id",
            ["a.png,300"],
            r"line 2, column 'motion_bucket_id': motion_bucket_id must be in 0\.\.255",
        ),
        ("image,noise_aug_strength", ["a.png,-0.5"], "line 2, column 'noise_aug_strength'"),
        ("image,num_frames", ["a.png,lots"], "line 2, column 'num_frames': 'lots' is not a number"),
        ("image,num_frames", ["a.png,0"], "num_frames must be at least 1"),
        ("image,num_inference_steps", ["a.png,2.5"], "must be a whole number"),
        ("image,height", ["a.png,500"], "multiple of 64"),
        ("image,fps", ["a.png,0"], "fps must be at least 1"),
        ("image,id", ["a.png,x", "b.png,x"], "line 3, column 'id': id 'x' is already used on line 2"),
        ("image,id", ["a.png,x", ",y"], "line 3, column 'image': empty"),
        ("image", [], "lists no images"),
    ],
)
def test_bad_manifests_name_the_line_and_column(manifest_of, header, rows, expected):
    with pytest.raises(ManifestError, match=expected):
        read_manifest(manifest_of(header, *rows))


def test_all_problems_are_reported_at_once(manifest_of):
    with pytest.raises(ManifestError) as info:
        read_manifest(manifest_of("image,fps,seed", "a.png,0,1", "b.png,7,-1"))
    assert "2 problem(s)" in str(info.value)
    assert "line 2, column 'fps'" in str(info.value) and "line 3, column 'seed'" in str(info.value)


def test_missing_manifest_file_says_how_to_pass_one(tmp_path):
    with pytest.raises(ManifestError, match="manifest=PATH"):
        read_manifest(tmp_path / "nope.csv")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ManifestError, match="not a readable UTF-8 CSV"):
        read_manifest(path)


def test_ids_are_never_paths(manifest_of):
    rows = read_manifest(manifest_of("image,id", "a.png,../../etc/passwd", "b.png,/abs/x"))
    assert all("/" not in r.item_id and not r.item_id.startswith(".") for r in rows)


def test_same_file_name_in_two_folders_gets_distinct_ids(manifest_of):
    rows = read_manifest(manifest_of("image", "x/cat.png", "y/cat.png"))
    assert [r.item_id for r in rows] == ["cat", "cat_line3"]
