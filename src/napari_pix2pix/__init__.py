"""napari-pix2pix: paired image-to-image translation (pix2pix) for napari and scripts.

Importing this package never imports Qt or napari, so it runs on headless servers:

>>> import napari_pix2pix as p2p
>>> model = p2p.train(source, target, axes="YX", steps=2000)
>>> model.save("model.safetensors")
>>> out = p2p.predict("model.safetensors", image, axes="ZYX")
"""

__version__ = "0.1.0"

from .config import Pix2PixConfig
from .data import output_axes, read_image, write_image
from .errors import (DeviceError, ImageFileError, InputError, ModelFileError, Pix2PixError,
                     TrainingError)
from .model import Pix2PixModel, load_model
from .prediction import predict, predict_lazy
from .training import (FinishedEvent, StepEvent, TrainingEvent, ValidationEvent, WarningEvent,
                       train, train_iter)

__all__ = [
    "DeviceError", "FinishedEvent", "ImageFileError", "InputError", "ModelFileError",
    "Pix2PixConfig", "Pix2PixError", "Pix2PixModel", "StepEvent", "TrainingError",
    "TrainingEvent", "ValidationEvent", "WarningEvent", "load_model", "output_axes", "predict", "predict_lazy",
    "read_image", "train", "train_iter", "write_image",
]
