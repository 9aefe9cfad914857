"""napari-pix2pix: paired image-to-image translation (pix2pix) for napari and scripts.

Importing this package never imports Qt or napari, so it runs on headless servers:

>>> import napari_pix2pix as p2p
>>> model = p2p.train(source, target, axes="YX", steps=2000)  # doctest: +SKIP
>>> model.save("model.safetensors")  # doctest: +SKIP
>>> out = p2p.predict("model.safetensors", image, axes="ZYX")  # doctest: +SKIP

The layers, each importing only those below it: ``plugin`` (napari) -> ``workflows``
(train, predict) -> ``io`` (files) -> ``engine`` (torch) -> config, options, errors.
"""

from ._version import __version__
from .config import Pix2PixConfig
from .engine.axes import output_axes
from .engine.events import FinishedEvent, StepEvent, TrainingEvent, ValidationEvent, WarningEvent
from .errors import (
    DeviceError,
    ImageFileError,
    InputError,
    ModelFileError,
    OutputError,
    Pix2PixError,
    PredictionError,
    TrainingError,
)
from .io.images import read_image, write_image
from .io.model_file import Pix2PixModel, load_model
from .workflows.batch_prediction import BatchResult, FileOutcome, predict_many
from .workflows.evaluation import Evaluation, evaluate
from .workflows.export import export_bioimageio, export_onnx
from .workflows.prediction import predict, predict_lazy
from .workflows.run_plan import RunPlan, plan_run
from .workflows.scoring import FileScores, evaluate_files
from .workflows.training import train, train_iter

__all__ = [
    "BatchResult",
    "DeviceError",
    "Evaluation",
    "FileOutcome",
    "FileScores",
    "FinishedEvent",
    "ImageFileError",
    "InputError",
    "ModelFileError",
    "OutputError",
    "Pix2PixConfig",
    "Pix2PixError",
    "Pix2PixModel",
    "RunPlan",
    "PredictionError",
    "StepEvent",
    "TrainingError",
    "TrainingEvent",
    "ValidationEvent",
    "WarningEvent",
    "__version__",
    "evaluate",
    "evaluate_files",
    "export_bioimageio",
    "export_onnx",
    "load_model",
    "output_axes",
    "plan_run",
    "predict",
    "predict_lazy",
    "predict_many",
    "read_image",
    "train",
    "train_iter",
    "write_image",
]
