"""litekit.data: the procedural dataset, class-per-folder images, ORBIT layout, downloads."""

from __future__ import annotations

import hashlib
import math
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets, transforms

from litekit import EpisodeSampler, episode_loader
from litekit.data import ImageFolderDataset, OrbitFrames, OrbitTaskSampler, ProceduralImages
from litekit.data import download as downloads
from litekit.data.folders import to_rgb
from litekit.data.procedural import band_limit

# --- the procedural dataset -------------------------------------------------------------------


def test_procedural_items_are_a_function_of_seed_class_and_index():
    a = ProceduralImages(num_classes=30, images_per_class=5, image_size=48, seed=1)
    b = ProceduralImages(num_classes=30, images_per_class=5, image_size=48, seed=1)
    for index in (0, 7, 149):
        image, label = a[index]
        assert label == index // 5 == a.label(index)
        assert torch.equal(image, b[index][0])
    other = ProceduralImages(num_classes=30, images_per_class=5, image_size=48, seed=2)
    assert not torch.equal(a[7][0], other[7][0])
    assert not torch.equal(a[7][0], a[8][0])  # another instance of the same class


@pytest.mark.parametrize("size", [32, 100, 512])
def test_procedural_images_at_any_size_from_32_to_512(size):
    image, _ = ProceduralImages(image_size=size)[12345]
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_labels_without_rendering(monkeypatch):
    data = ProceduralImages(num_classes=1000, images_per_class=20)
    monkeypatch.setattr(ProceduralImages, "render", lambda *a, **k: pytest.fail("rendered"))
    assert len(data) == 20000 and data.targets[:21] == [0] * 20 + [1]
    sampler = EpisodeSampler(data, way=5, shot=3, query_per_class=2, episodes=3, seed=0)
    assert len(list(sampler)) == 3


def test_at_least_1000_classes_with_distinct_codes_and_disjoint_ranges():
    train = ProceduralImages(num_classes=1000)
    test = ProceduralImages(num_classes=1000, first_class=1000)
    train_codes = {train.code(c) for c in range(1000)}
    test_codes = {test.code(c) for c in range(1000)}
    assert len(train_codes) == 1000 and len(test_codes) == 1000
    assert not train_codes & test_codes
    assert train.code_space == 2 * 2 * 2 * 2 * 4 * 32


def test_detail_becomes_visible_as_images_grow():
    data = ProceduralImages()
    codes = [data.visible_codes(s) for s in (32, 64, 128, 224, 512)]
    ideal = [data.ideal_accuracy(5, s) for s in (32, 64, 128, 224, 512)]
    assert codes == [4, 8, 16, 64, 2048]
    assert ideal == sorted(ideal) and ideal[0] < 0.62 and ideal[3] > 0.96
    # the formula E[1/(1+B)], B ~ Binomial(way-1, 1/codes), summed out
    p = 1 / 8
    exact = sum(math.comb(4, b) * p**b * (1 - p) ** (4 - b) / (1 + b) for b in range(5))
    assert data.ideal_accuracy(5, 64) == pytest.approx(exact)
    assert band_limit(10, 32) == 1.0 and band_limit(16, 32) == 0.0
    assert 0 < band_limit(14, 32) < 1


def _power(image: torch.Tensor, cycles: float, angle: float) -> float:
    """Spectral power of the grey image near (cycles·cos θ, cycles·sin θ) cycles per image."""
    grey = image.mean(0)
    spectrum = torch.fft.fft2(grey - grey.mean()).abs() ** 2
    size = grey.shape[0]
    fx = round(cycles * math.cos(angle)) % size
    fy = round(cycles * math.sin(angle)) % size
    window = [(fy + dy) % size for dy in range(-2, 3)], [(fx + dx) % size for dx in range(-2, 3)]
    return float(spectrum[np.ix_(*window)].sum())


def test_a_class_detail_sits_at_its_level_frequency_and_orientation():
    data = ProceduralImages(num_classes=50, image_size=224, noise=0.0)
    level = 3  # 76 cycles per image: visible at 224 px, beyond Nyquist at 128 px
    cycles = data.cycles[level]
    for label in range(5):
        symbol = data.code(label)[1 + level]
        angles = [s * math.pi / data.orientations[level] for s in range(4)]
        image = data.render(label, 0)
        powers = [_power(image, cycles, a) for a in angles]
        assert int(np.argmax(powers)) == symbol
    assert band_limit(cycles, 128) == 0.0


def test_procedural_rejects_bad_arguments():
    for kwargs, message in [
        ({"image_size": 16}, "^image_size=16"),
        ({"image_size": 1024}, "^image_size=1024"),
        ({"num_classes": 3000}, "^num_classes=3000.*2048 codes"),
        ({"first_class": 1500}, "^num_classes=1000.*first_class=1500"),
        ({"orientations": 4}, "^orientations=4"),
        ({"noise": -1.0}, "^noise=-1.0"),
        ({"min_cycles": 0}, "^min_cycles=0"),
    ]:
        with pytest.raises(ValueError, match=message):
            ProceduralImages(**kwargs)


# --- class-per-folder images ------------------------------------------------------------------


def _write_image(path, size=12, value=0, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size, size, 3), value, dtype=np.uint8)
    pixels[: size // 2] = 255 - value
    Image.fromarray(pixels).save(path, format=fmt)


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "images"
    for c in range(4):
        for i in range(6):
            extension = "png" if i % 2 else "jpg"
            _write_image(root / f"class{c}" / f"{i}.{extension}", value=40 * c + i)
    return root


def test_torchvision_image_folder_works_with_the_samplers(class_folders):
    plain = datasets.ImageFolder(class_folders, transform=transforms.ToTensor())
    sampler = EpisodeSampler(plain, way=3, shot=2, query_per_class=2, episodes=2, seed=0)
    episode = next(iter(episode_loader(plain, sampler)))
    assert episode.support_images.shape == (6, 3, 12, 12) and episode.way == 3


def test_image_folder_dataset_resizes_and_samples(class_folders):
    data = ImageFolderDataset(class_folders, image_size=8)
    assert isinstance(data, datasets.ImageFolder)
    assert data.classes == ["class0", "class1", "class2", "class3"] and len(data) == 24
    sampler = EpisodeSampler(data, way=4, shot=3, query_per_class=3, episodes=2, seed=1)
    episodes = list(episode_loader(data, sampler))
    assert episodes[0].support_images.shape == (12, 3, 8, 8)
    assert torch.equal(
        episodes[1].query_images, list(episode_loader(data, sampler))[1].query_images
    )


def test_omniglot_style_nested_classes(tmp_path):
    root = tmp_path / "images_background"
    for alphabet in ("Latin", "Greek"):
        for character in ("c1", "c2"):
            for i in range(3):
                _write_image(root / alphabet / character / f"{i}.png", value=i)
    data = ImageFolderDataset(root, image_size=8, class_depth=2)
    assert data.classes == ["Greek/c1", "Greek/c2", "Latin/c1", "Latin/c2"]
    assert sorted(set(data.targets)) == [0, 1, 2, 3] and len(data) == 12


def test_an_empty_class_folder_is_named(class_folders):
    (class_folders / "class9").mkdir()
    (class_folders / "class9" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"^root=.*: the class folder .*class9.* holds no"):
        ImageFolderDataset(class_folders)
    with pytest.raises(ValueError, match=r"^root=.*no such folder"):
        ImageFolderDataset(class_folders / "missing")


def test_folder_errors_name_the_argument_the_caller_gives(class_folders):
    with pytest.raises(ValueError, match=r"^--data=.*missing'?: no such folder"):
        ImageFolderDataset(class_folders / "missing", argument="--data")
    with pytest.raises(ValueError, match=r"^--data=.*: found no class folders 2 level"):
        ImageFolderDataset(class_folders, class_depth=2, argument="--data")


def _sixteen_bit_ramp() -> np.ndarray:
    """A 16-bit grey ramp over the whole range 0..65535, as a (32, 32) uint16 array."""
    return np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_sixteen_bit_grey_is_scaled_not_clipped(mode):
    ramp = _sixteen_bit_ramp()
    image = Image.fromarray(ramp)  # mode "I;16"
    if mode == "I":
        image = image.convert("I")
    elif mode == "I;16B":
        image = Image.frombytes("I;16B", image.size, ramp.astype(">u2").tobytes())
    assert image.mode == mode
    expected = np.rint(ramp.astype(np.float64) / 257).astype(np.uint8)  # 65535 / 255 = 257
    scaled = np.asarray(to_rgb(image))
    assert scaled.shape == (32, 32, 3)
    for channel in range(3):
        np.testing.assert_array_equal(scaled[..., channel], expected)


def test_a_sixteen_bit_png_loads_as_its_scaled_grey_levels(tmp_path):
    ramp = _sixteen_bit_ramp()
    path = tmp_path / "ramp" / "a" / "ramp.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == "I;16"  # what Pillow gives a 16-bit grey PNG
    _write_image(tmp_path / "ramp" / "b" / "other.png")
    data = ImageFolderDataset(tmp_path / "ramp", image_size=32)
    tensor = data[data.targets.index(0)][0]
    expected = torch.from_numpy(np.rint(ramp / 257) / 255).float()
    torch.testing.assert_close(tensor, expected.expand(3, 32, 32), rtol=0, atol=1e-6)
    assert (tensor == 1).float().mean() < 0.01  # clipping made 99.6% of these pixels white


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_file_is_named(class_folders, damage):
    bad = class_folders / "class2" / "3.png"
    if damage == "garbage":
        bad.write_bytes(b"this is not a png")
    else:
        _write_image(bad, size=64, value=7)
        bad.write_bytes(bad.read_bytes()[:60])
    data = ImageFolderDataset(class_folders, image_size=8)
    index = [path for path, _ in data.samples].index(str(bad))
    with pytest.raises(ValueError, match=r"^image file=.*class2/3\.png.*cannot be read"):
        data[index]
    with pytest.raises(ValueError, match=r"class2/3\.png"):
        ImageFolderDataset(class_folders, verify=True)


# --- ORBIT layout -----------------------------------------------------------------------------


def _orbit_tree(root, users=2, objects=(4, 3), videos=3, frames=30, kinds=False):
    for u in range(users):
        for o in range(objects[u]):
            for v in range(videos):
                kind = ("clean" if v < videos - 1 else "clutter") if kinds else None
                folder = root / f"P{u}" / f"object{o}"
                folder = folder / kind if kind else folder
                for f in range(frames):
                    _write_image(folder / f"P{u}-o{o}-v{v}" / f"{f:05d}.jpg", size=8, value=o)
    return root


@pytest.fixture(scope="module")
def orbit_root(tmp_path_factory):
    return _orbit_tree(tmp_path_factory.mktemp("orbit"))


def test_orbit_frames_index_users_objects_and_videos(orbit_root):
    frames = OrbitFrames(orbit_root, image_size=8)
    assert frames.users == ["P0", "P1"]
    assert len(frames.classes) == 7 and len(frames.videos) == 21 and len(frames) == 630
    assert frames.classes[4] == ("P1", "object0") and frames.user_classes("P1") == [4, 5, 6]
    image, label = frames[int(frames.videos[5].frames[0])]
    assert image.shape == (3, 8, 8) and label == frames.videos[5].label == 1


def test_orbit_tasks_are_per_user_with_context_and_target_from_different_videos(orbit_root):
    frames = OrbitFrames(orbit_root, image_size=8)
    sampler = OrbitTaskSampler(frames, episodes=6, seed=3)
    video_of = {int(i): k for k, v in enumerate(frames.videos) for i in v.frames}
    users = set()
    for k in range(6):
        task = sampler.episode(k)
        owners = {frames.classes[c][0] for c in task.class_ids}
        assert len(owners) == 1  # one user's objects
        user = owners.pop()
        users.add(user)
        assert len(task.class_ids) == len(frames.user_classes(user))  # way: all their objects
        assert set(task.support_labels) == set(task.query_labels) == set(range(len(task.class_ids)))
        support_videos = {video_of[int(i)] for i in task.support_indices}
        query_videos = {video_of[int(i)] for i in task.query_indices}
        assert not support_videos & query_videos
        for label, class_id in enumerate(task.class_ids):
            assert all(
                frames.targets[i] == class_id
                for i in task.support_indices[task.support_labels == label]
            )
        # all frames of 2 context videos per object: hundreds of support images
        assert len(task.support_indices) == 2 * 30 * len(task.class_ids) >= 180
    assert users == {"P0", "P1"}
    again = OrbitTaskSampler(frames, episodes=6, seed=3).episode(4)
    assert np.array_equal(again.support_indices, sampler.episode(4).support_indices)


def test_orbit_tasks_load_as_episodes(orbit_root):
    frames = OrbitFrames(orbit_root, image_size=8)
    sampler = OrbitTaskSampler(
        frames, episodes=2, seed=0, max_way=3, context_frames=10, target_frames=5
    )
    episode = next(iter(episode_loader(frames, sampler)))
    assert episode.way == 3
    assert episode.n_support == 3 * 2 * 10 and episode.n_query == 3 * 1 * 5
    assert episode.support_images.shape[1:] == (3, 8, 8)


def test_orbit_released_layout_clean_context_clutter_target(tmp_path):
    root = _orbit_tree(tmp_path / "orbit", objects=(3, 2), frames=4, kinds=True)
    frames = OrbitFrames(root, image_size=8)
    assert {v.kind for v in frames.videos} == {"clean", "clutter"}
    sampler = OrbitTaskSampler(frames, episodes=4, context_kind="clean", target_kind="clutter")
    for k in range(4):
        task = sampler.episode(k)
        kind_of = {int(i): v.kind for v in frames.videos for i in v.frames}
        assert {kind_of[int(i)] for i in task.support_indices} == {"clean"}
        assert {kind_of[int(i)] for i in task.query_indices} == {"clutter"}
    assert sampler._users == ["P0", "P1"]
    three = OrbitTaskSampler(
        frames, episodes=1, min_way=3, context_kind="clean", target_kind="clutter"
    )
    assert three._users == ["P0"]  # only P0 has three objects


def test_orbit_errors_name_the_folder(tmp_path):
    root = _orbit_tree(tmp_path / "orbit", objects=(2, 2), frames=2)
    (root / "P0" / "object1" / "empty-video").mkdir()
    with pytest.raises(ValueError, match=r"^video folder=.*empty-video.*holds no frames"):
        OrbitFrames(root)
    (root / "P0" / "object1" / "empty-video").rmdir()
    (root / "P2").mkdir()
    with pytest.raises(ValueError, match=r"^user folder=.*P2.*holds no object"):
        OrbitFrames(root)
    (root / "P2").rmdir()
    frames = OrbitFrames(root)
    with pytest.raises(ValueError, match="^min_way=3"):
        OrbitTaskSampler(frames, episodes=1, min_way=3)
    with pytest.raises(ValueError, match="^users="):
        OrbitTaskSampler(frames, episodes=1, users=["P7"])
    with pytest.raises(ValueError, match="^context_kind="):
        OrbitTaskSampler(frames, episodes=1, context_kind="clean")
    with pytest.raises(ValueError, match="^context_frames=10: frames come in clips"):
        OrbitTaskSampler(frames, episodes=1, context_frames=10, clip_length=8)


# --- the download helper (no network: file:// URLs and a simulated outage) -------------------


@pytest.fixture
def archive(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    path = source / "tiny.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("tiny/a.txt", "hello")
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_download_checks_the_checksum_and_extracts(archive, tmp_path):
    path, md5 = archive
    folder = downloads.download(path.as_uri(), tmp_path / "data", md5=md5)
    assert (folder / "tiny.zip").read_bytes() == path.read_bytes()
    assert (folder / "tiny" / "a.txt").read_text() == "hello"
    # a second call keeps the verified archive and never overwrites what was unpacked
    (folder / "tiny" / "a.txt").write_text("edited by the user")
    assert downloads.download(path.as_uri(), tmp_path / "data", md5=md5) == folder
    assert (folder / "tiny" / "a.txt").read_text() == "edited by the user"


def test_a_wrong_checksum_keeps_nothing_and_never_overwrites(archive, tmp_path):
    path, _ = archive
    target = tmp_path / "data"
    with pytest.raises(downloads.DownloadError, match="does not match"):
        downloads.download(path.as_uri(), target, md5="0" * 32)
    assert list(target.iterdir()) == []
    (target / "tiny.zip").write_bytes(b"someone's file")
    with pytest.raises(downloads.DownloadError, match="will not overwrite"):
        downloads.download(path.as_uri(), target, md5="0" * 32)
    assert (target / "tiny.zip").read_bytes() == b"someone's file"


def test_download_fails_clearly_without_a_network(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(downloads.DownloadError, match="by hand as data/README.md"):
        downloads.download("omniglot", tmp_path)
    assert [p for p in (tmp_path / "omniglot").iterdir()] == []


def test_download_needs_a_checksum_or_a_known_name(tmp_path):
    with pytest.raises(ValueError, match="^md5=None"):
        downloads.download("https://example.org/data.zip", tmp_path)
    with pytest.raises(ValueError, match="^name='imagenet'"):
        downloads.download("imagenet", tmp_path)
    omniglot = downloads.known_archives()["omniglot"]
    assert [a.filename for a in omniglot] == ["images_background.zip", "images_evaluation.zip"]
    assert all(a.md5 and len(a.md5) == 32 for a in omniglot)


def test_procedural_dataset_pickles_small_and_renders_the_same():
    import pickle

    data = ProceduralImages(num_classes=20, images_per_class=4, image_size=64, seed=5)
    first = data[13][0]  # builds the noise field
    payload = pickle.dumps(data)
    assert len(payload) < 200_000  # the 7 MB noise field is rebuilt, not shipped to workers
    assert torch.equal(pickle.loads(payload)[13][0], first)
