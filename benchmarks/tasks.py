"""The real tasks that defaults and checks are validated on, not only one field of view.

Each task is an aligned source/target pair split into a training part and a held-out
part that no training crop touches:

- ``synthetic``: a quantitative 2D mapping made here (the target is a fixed, nonlinear
  function of the source's local intensity, as in MR -> CT or a calibrated stain ->
  stain), 768 x 768 px, the right quarter held out.
- ``dapi``: the shared phase-contrast z-stack (13 planes as channels) -> DAPI field,
  sparse fluorescence, the right quarter held out (as benchmarks/quality.py).
- ``mr2d``: the MNI ICBM152 2009a T1 template -> a tissue map (grey matter + 2 x white
  matter probability, 0-510), axial slices as a 2D stack: slices 30-109 train, 120-139
  are held out. Dense, medical, quantitative.
- ``mr3d``: the same volume in 3D (Z spatial): slices 20-111 train, 120-183 held out.

The MNI files come from nilearn's wheel, which ships them (no download at run time):

    pip download --no-deps nilearn -d /tmp/nl && cd /tmp/nl && unzip -o -q nilearn*.whl
    export NILEARN_DATA=/tmp/nl/nilearn/datasets/data   # the default

The shared field is read from ../shared/data (never copied).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "isl_phase_to_dapi"
MNI = Path(os.environ.get("NILEARN_DATA", "/tmp/nl/nilearn/datasets/data"))
TASKS = ("synthetic", "dapi", "mr2d", "mr3d")


@dataclass
class Task:
    name: str
    about: str
    train_source: np.ndarray
    train_target: np.ndarray
    test_source: np.ndarray
    test_target: np.ndarray
    axes: str  # of the sources; the targets have the same axes without C
    spatial_dims: int

    @property
    def target_axes(self) -> str:
        return self.axes.replace("C", "")

    def train(self, **options):
        """``p2p.train`` on the training part, laid out as the task is: its axes and
        spatial dims, on the CPU with seed 0 unless ``options`` say otherwise."""
        import napari_pix2pix as p2p

        options = {"spatial_dims": self.spatial_dims, "seed": 0, "device": "cpu", **options}
        return p2p.train(
            self.train_source,
            self.train_target,
            axes=self.axes,
            target_axes=self.target_axes,
            **options,
        )


def load(name: str) -> Task:
    return {"synthetic": synthetic, "dapi": dapi, "mr2d": mr2d, "mr3d": mr3d}[name]()


def synthetic(size: int = 768, seed: int = 0) -> Task:
    """Blobs and texture in counts (0-4000); the target is a monotone nonlinear function
    of the source smoothed over 2 px, so every source intensity has one right answer."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.normal(size=(size, size)), 6)
    blobs = np.zeros((size, size))
    for y, x in rng.integers(0, size, (160, 2)):
        blobs[y, x] = rng.uniform(0.5, 1.5)
    blobs = ndimage.gaussian_filter(blobs, 5) * 150
    source = 300 + 2500 * (texture - texture.min()) / np.ptp(texture) + 1500 * blobs
    source = np.clip(source + rng.normal(0, 20, source.shape), 0, 4000).astype(np.uint16)
    smooth = ndimage.gaussian_filter(source.astype(np.float64), 2)
    target = (100 + 900 * (smooth / 4000) ** 2).astype(np.float32)
    cut = size * 3 // 4
    return Task(
        "synthetic",
        "synthetic quantitative 2D (target = f(source))",
        source[:, :cut],
        target[:, :cut],
        source[:, cut:],
        target[:, cut:],
        "YX",
        2,
    )


def dapi(planes: int = 13) -> Task:
    import tifffile

    phase = tifffile.imread(SHARED / "phase_contrast_zstack.tif")
    target = tifffile.imread(SHARED / "dapi.tif")
    source, axes = (phase, "CYX") if planes == 13 else (phase[6], "YX")
    return Task(
        "dapi",
        "phase contrast (13 planes) -> DAPI, sparse 2D",
        source[..., :768],
        target[:, :768],
        source[..., 768:],
        target[:, 768:],
        axes,
        2,
    )


def mni_volumes() -> tuple[np.ndarray, np.ndarray]:
    """T1 and tissue map, ZYX (axial slices), float32; 1 mm voxels."""
    import nibabel as nib

    def read(kind: str) -> np.ndarray:
        path = MNI / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"
        if not path.exists():
            raise SystemExit(f"{path} is missing: see benchmarks/tasks.py for the MNI files")
        return np.asarray(nib.load(path).dataobj, np.float32).transpose(2, 1, 0)[:, ::-1]

    t1 = read("t1")
    tissue = read("gm") + 2 * read("wm")
    return np.ascontiguousarray(t1), np.ascontiguousarray(tissue)


def mr2d() -> Task:
    t1, tissue = mni_volumes()
    return Task(
        "mr2d",
        "MR T1 -> tissue map, 2D axial slices",
        t1[30:110],
        tissue[30:110],
        t1[120:140],
        tissue[120:140],
        "ZYX",
        2,
    )


def mr3d() -> Task:
    t1, tissue = mni_volumes()
    return Task(
        "mr3d",
        "MR T1 -> tissue map, 3D",
        t1[20:112],
        tissue[20:112],
        t1[120:184],
        tissue[120:184],
        "ZYX",
        3,
    )
