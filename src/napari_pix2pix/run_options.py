"""Options of one training or prediction run that are not part of the model (where it
runs, how often it validates and checkpoints, how it tiles), declared like the config's
(options.py): train/predict, the CLI and the GUI forms take them from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .options import check_fields, option

DEVICES = ("auto", "cuda", "mps", "cpu")
IF_EXISTS = ("error", "overwrite", "resume")
KEEP = ("best", "accurate", "last")
PRESETS = ("auto", "paper")
VAL_METRICS = ("mae", "pearson_r", "ssim", "psnr")


@dataclass
class TrainingRun:
    """Run options of ``train``/``train_iter``."""

    device: str = option(
        "auto",
        "where to train: auto (CUDA, then Apple MPS, then CPU), cuda, cuda:N, mps or cpu",
        group="basic",
        choices=DEVICES,
        open_choices=True,
    )
    val_every: int | None = option(
        None,
        "steps between validations (auto: a tenth of the steps)",
        none="auto",
        label="Validate every",
        low=1,
        high=10**9,
        step=100,
    )
    checkpoint_dir: Path | None = option(
        None,
        "folder for a resumable checkpoint of the run",
        label="Checkpoint folder",
        none="no checkpoint",
    )
    checkpoint_every: int | None = option(
        None,
        "steps between checkpoints (one is also written when the run ends or is stopped)",
        none="at validations",
        low=1,
        high=10**9,
        step=100,
    )
    resume: Path | None = option(
        None, "checkpoint folder of an interrupted run to continue", group="data", none="a new run"
    )
    resume_other_data: bool = option(
        False,
        "let resume go on with other images than the run was trained on (refused by "
        "default): the run keeps its normalization, so values beyond its range are clipped",
        label="Resume on other data",
        # the widget's Resume continues its last run on the layers chosen; other data
        # is a new run there (Start)
        surfaces=("cli",),
    )
    init_model: Path | None = option(
        None,
        "a trained model to fine-tune (a model file, folder or bioimage.io zip exported by "
        "napari-pix2pix; a Pix2PixModel in the API): its architecture, normalization and "
        "generator weights are kept",
        group="data",
        none="a new model",
        allowed="a model path",
        surfaces=("cli",),
    )
    preset: str = option(
        "auto",
        "the recipe for the network and crops you do not set: auto (sized for the data, "
        "the device and the time budget) or paper (depth 8, 64 channels, 256 px crops)",
        group="basic",
        choices=PRESETS,
        label="Recipe",
    )
    time_budget: float | None = option(
        None,
        "seconds the run may take, validation included; the learning-rate decay and GAN "
        "warm-up are spread over it (steps then only caps the run). The error map's "
        "calibration and the run report come after it (a few validations' time)",
        group="basic",
        none="no limit",
        low=1.0,
        high=10.0**8,
        step=1.0,
        human_unit=("minutes", 60.0),
        unit="seconds",
    )
    keep: str = option(
        "best",
        "the model a run ends with: best (with a cGAN, the sharpest validation whose "
        "score is within a tolerance of the most accurate one at the adversarial term's "
        "full weight; without, the best score), accurate (the best score: often the "
        "blurrier model) or last (the last stays in the checkpoint either way)",
        choices=KEEP,
    )
    val_metric: str = option(
        "mae",
        "the validation score that picks the kept model: mae (lower is better), "
        "pearson_r, ssim or psnr (higher is better)",
        choices=VAL_METRICS,
        label="Best by",
    )
    patience: int | None = option(
        None,
        "stop after this many validations without a better score",
        none="never stop early",
        low=1,
        high=10**6,
        step=5,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class PredictOptions:
    """Options of ``predict`` (and the CLI's and Predict widget's)."""

    axes: str | None = option(
        None,
        "axes of the image",
        group="data",
        allowed="letters T Z C Y X",
        shown_default="from the file, else the model's source axes",
    )
    tile_size: tuple[int, ...] | None = option(
        None,
        "tile side, or one per spatial axis; rounded up to a multiple of 2**depth",
        group="basic",
        none="patch size",
        low=1,
        high=65536,
        step=16,
    )
    overlap: float = option(
        0.25,
        "overlap of neighbouring tiles, blended with a Gaussian",
        group="basic",
        low=0.0,
        high=1.0,
        high_open=True,
        step=0.05,
    )
    batch_size: int | None = option(
        None,
        "tiles per network call (auto: 4; on CUDA doubled, up to 64, while one call fits "
        "in half the free GPU memory)",
        group="basic",
        none="auto",
        low=1,
        high=65536,
    )
    device: str = option(
        "auto",
        "where to predict: auto (CUDA, then Apple MPS, then CPU), cuda, cuda:N, mps or cpu",
        group="basic",
        choices=DEVICES,
        open_choices=True,
    )
    amp: str = option(
        "off",
        "mixed precision: off, auto (bf16, or fp16, on CUDA), bf16, fp16",
        choices=("auto", "off", "bf16", "fp16"),
        label="Mixed precision",
    )
    fuse: bool = option(
        True,
        "predict with a copy of the network laid out for the device (BatchNorm folded "
        "into the convolutions; on the CPU channels_last and, in 2D, oneDNN kernels "
        "prepacked for the tile): the same outputs, faster; off: the trained network "
        "as it is",
        label="Fused network",
    )
    uncertainty: bool = option(
        False,
        "also an error map: the expected absolute error per pixel in the target's units "
        "(the spread of the predictions of the 8 flips/rotations, calibrated on the "
        "run's validation; the raw spread for a model without a calibration), 8x the "
        "work, in memory",
        group="basic",
        label="Confidence map",
        surfaces=("gui",),
    )
    if_exists: str = option(
        "error",
        "an existing output path: error (it is never touched), overwrite (only a prediction "
        "napari-pix2pix wrote), resume (a .zarr output of the same work: skip the slices it "
        "holds)",
        choices=IF_EXISTS,
        surfaces=("cli",),
    )

    def __post_init__(self) -> None:
        check_fields(self)


OUTPUT_FORMATS = ("ome.tif", "tif", "ome.zarr", "zarr", "nii.gz", "nii")


@dataclass
class BatchOptions:
    """Options of ``predict_many`` (and of ``napari-pix2pix predict`` given a folder, a
    glob or several inputs): how each input's output is named."""

    suffix: str = option(
        "_pix2pix",
        "added to each input's name (without its image ending) to name its output: "
        "a.ome.tif -> a_pix2pix.ome.tif",
        surfaces=("cli",),
    )
    format: str = option(
        "ome.tif",
        "the outputs' type, as their ending: ome.tif or tif (streamed OME-TIFF), ome.zarr "
        "or zarr (resumable), nii.gz or nii (NIfTI); any ending a single prediction writes",
        choices=OUTPUT_FORMATS,
        open_choices=True,
        surfaces=("cli",),
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class ScoringOptions:
    """Options of ``evaluate_files`` (and ``napari-pix2pix evaluate``): how predictions
    are paired with their targets and scored."""

    data_range: float | None = option(
        None,
        "the value range PSNR and SSIM are taken over, in the target's units",
        none="the target's own max - min, per image and channel, inside the mask",
        low=0.0,
        low_open=True,
        surfaces=("cli",),
    )
    suffix: str = option(
        "_pix2pix",
        "removed from the end of a prediction's name (before its image ending) to pair it "
        "with its target by name, as predict's suffix added it: a_pix2pix.ome.zarr -> a",
        surfaces=("cli",),
    )

    def __post_init__(self) -> None:
        check_fields(self)
