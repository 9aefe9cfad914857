"""Exceptions a user can cause, so callers (CLI, napari widgets, scripts) can tell
them apart from bugs and show the message as is."""


class Pix2PixError(Exception):
    """Base class of every error napari-pix2pix raises on purpose."""


class InputError(Pix2PixError, ValueError):
    """Images, axes or options that cannot be used; the message says how to fix them."""


class ModelFileError(Pix2PixError, OSError):
    """A model or checkpoint path that is missing, unreadable, corrupt or not a model."""


class ImageFileError(Pix2PixError, OSError):
    """An image path that is missing, unreadable or not a TIFF/NIfTI/zarr image."""


class DeviceError(Pix2PixError, RuntimeError):
    """A device was asked for that this machine does not have."""


class TrainingError(Pix2PixError, RuntimeError):
    """Training cannot go on (for example the loss became NaN)."""


class OutputError(Pix2PixError, OSError):
    """A result could not be written (disk full, permission denied, the path appeared
    meanwhile); the message names the path, and nothing the user owned was replaced."""


class PredictionError(Pix2PixError, RuntimeError):
    """A prediction came out wrong (NaN or infinite values) and was not handed back."""
