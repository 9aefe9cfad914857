"""Medical volumes: NIfTI (.nii, .nii.gz) read and written with their affine and header,
so that a prediction lies in the same scanner space as its input; MHA/NRRD read through
MONAI's ITKReader where ITK is installed.

Our arrays are the reverse of NIfTI's dimension order: NIfTI's (X, Y, Z, T, C) dims 1-5
become "CTZYX" (a 3D volume is "ZYX"), a plain transpose that writing undoes exactly.
NIfTI is read with nibabel itself: MONAI's NibabelReader.read "corrects" a header whose
pixdim disagrees with its sform by replacing the sform with the qform, which would move
the output in space."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..engine.axes import AxesLayout
from ..engine.inference import ArrayOutput
from ..engine.memory import refuse_beyond_memory
from ..errors import ImageFileError
from .output_paths import AtomicFile, check_output_path
from .physical_sizes import check_sizes, in_unit, micrometres, read_sizes
from .provenance import NOT_A_PREDICTION, is_prediction_descrip, prediction_descrip

NIFTI_AXES = "XYZTC"  # NIfTI's dims 1..5
# NIfTI xyzt_units <-> our unit symbols; 'unknown' is millimetres by NIfTI convention
NIFTI_UNITS = {"mm": "mm", "micron": "µm", "meter": "m", "unknown": "mm"}


def read_nifti(path: Path, lazy: bool = False):
    """(array, axes, scale, unit, meta) of a NIfTI volume; ``meta`` holds what an output
    needs to lie where the input lies (its header and affine). ``lazy`` maps an
    uncompressed .nii from disk (nibabel's ArrayProxy, a memmap when its values are
    unscaled); a .nii.gz is always decompressed whole, as gzip cannot seek, so it is
    refused beyond the available memory."""
    import nibabel as nib

    try:
        img = nib.load(path, mmap="r" if lazy else False)
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise ImageFileError(f"{str(path)!r} is not a NIfTI image.")
        header, shape = img.header, tuple(img.shape)
        if not 2 <= len(shape) <= 5 or 0 in shape:
            raise ImageFileError(f"{str(path)!r} has shape {shape}; 2 to 5 non-empty dims needed.")
        nbytes = int(np.prod(shape)) * np.dtype(img.get_data_dtype()).itemsize
        end = int(header["vox_offset"]) + nbytes
        gz = str(path).lower().endswith(".gz")
        scaled = img.dataobj.slope != 1 or img.dataobj.inter != 0  # then read whole
        if not gz and path.stat().st_size < end:
            raise ImageFileError(
                f"{str(path)!r} is truncated: its voxels need {end} bytes but the file has "
                f"only {path.stat().st_size}; copy or save it again."
            )
        decoded = int(np.prod(shape)) * 8 if scaled else nbytes  # scaling gives float64
        if not lazy or gz or scaled:
            refuse_beyond_memory(
                decoded,
                f"{str(path)!r} ({shape}) decodes to",
                "save it as an uncompressed .nii, which is read lazily.",
                ImageFileError,
            )
        data = np.asanyarray(img.dataobj)
    except (
        nib.filebasedimages.ImageFileError,
        nib.spatialimages.HeaderDataError,
        ValueError,
        EOFError,
        OSError,
        zlib.error,
        struct.error,
    ) as exc:
        if isinstance(exc, ImageFileError):
            raise
        raise ImageFileError(f"cannot read {str(path)!r} as a NIfTI image ({exc}).") from exc
    except MemoryError as exc:
        raise ImageFileError(f"{str(path)!r} does not fit in memory.") from exc
    letters = NIFTI_AXES[: data.ndim]
    try:
        space_unit = header.get_xyzt_units()[0]
    except KeyError:  # a code NIfTI does not define: unknown, so mm
        space_unit = "unknown"
    unit = NIFTI_UNITS.get(space_unit or "unknown", "mm")
    zooms = {a: (z, unit) for a, z in zip(letters[:3], _file_zooms(path, header))}
    scale, unit = read_sizes(zooms, path, into=None)
    meta = {"nifti_header": header.copy(), "affine": np.array(img.affine)}
    return data.transpose(), letters[::-1], scale, unit, meta


def _file_zooms(path: Path, header) -> tuple[float, ...]:
    """The voxel sizes as the file has them. nibabel's loader sets a zero pixdim to 1 (a
    size the file never had), so the header is read again unchecked: a zero then stays
    zero and the rule in physical_sizes.py leaves that axis without a size."""
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(path) as fh:
            raw = type(header).from_fileobj(fh, check=False)
        return tuple(float(z) for z in raw["pixdim"][1 : 1 + len(header.get_zooms())])
    except Exception:  # what the checked header says is still a valid answer
        return tuple(float(z) for z in header.get_zooms())


def read_itk(path: Path, lazy: bool = False):
    """(array, axes, scale, unit, meta) of an MHA/NRRD volume, read whole through MONAI's
    ITKReader (numpy order, so "ZYX"; channels last); ``meta`` holds its affine."""
    from monai.data import ITKReader

    reader = ITKReader(reverse_indexing=True)
    try:
        array, meta = reader.get_data(reader.read(str(path)))
    except Exception as exc:  # ITK raises RuntimeError for anything it cannot parse
        raise ImageFileError(f"cannot read {str(path)!r} with ITK ({exc}).") from exc
    spatial = int(len(meta["spatial_shape"]))
    axes = "ZYX"[-spatial:] + ("C" if array.ndim > spatial else "")
    spacing = {a: (s, "mm") for a, s in zip("XYZ", meta["spacing"])}
    scale, unit = read_sizes(spacing, path, into=None)
    return np.asarray(array), axes, scale, unit, {"affine": np.asarray(meta["affine"])}


def nifti_is_ours(path: Path) -> bool:
    """Whether this NIfTI is a prediction of napari-pix2pix (its descrip says so): only
    those may be replaced (see provenance.py)."""
    import nibabel as nib

    try:
        return is_prediction_descrip(nib.load(path).header["descrip"])
    except Exception:  # unreadable, or not NIfTI: not ours
        return False


def write_nifti(
    path,
    array,
    axes: str,
    scale: dict[str, float] | None = None,
    unit: str | None = None,
    meta: dict | None = None,
    overwrite: bool = False,
    inputs=(),
    descrip: bytes | None = None,
) -> Path:
    """Write a NIfTI volume atomically: with ``meta`` from a NIfTI input, its header
    (affine, qform/sform codes, units) unchanged except data type and description;
    otherwise an affine from ``scale``. An existing file only with ``overwrite`` and only
    if it is a prediction of napari-pix2pix. ``descrip``: provenance.prediction_descrip
    for a prediction; None (an image of the user's) marks nothing."""
    path = check_output_path(
        path,
        inputs=inputs,
        ours=nifti_is_ours,
        if_exists="overwrite" if overwrite else "error",
        overwrite_hint="overwrite=True",
        not_ours=NOT_A_PREDICTION,
    )
    image = nifti_image(np.asarray(array), axes, scale or {}, unit, meta or {}, descrip)
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else ".nii"
    with AtomicFile(path, replace=overwrite, suffix=suffix) as f:  # nibabel compresses by suffix
        image.to_filename(f.temp)
    return path


class NiftiOutput(ArrayOutput):
    """The prediction in memory, written as NIfTI when complete: with the input's header
    (``meta``), so its affine, spacing and origin are the input's."""

    def __init__(
        self, path: Path, layout: AxesLayout, scale, unit, meta, replace: bool, model_sha256=""
    ):
        super().__init__(np.empty(layout.shape, np.float32), layout)
        self.path, self.scale, self.unit, self.meta, self.replace = path, scale, unit, meta, replace
        self.descrip = prediction_descrip(model_sha256)

    def finish(self) -> None:
        write_nifti(
            self.path,
            self.array,
            self.layout.axes,
            self.scale,
            self.unit,
            self.meta,
            overwrite=self.replace,
            descrip=self.descrip,
        )


def nifti_image(
    array: np.ndarray, axes: str, scale: dict, unit: str | None, meta: dict, descrip=None
):
    """Our (.., Z, Y, X) array as a nibabel image in NIfTI's (X, Y, Z, T, C) order. The
    input header's descrip is kept, except a prediction's mark (a user's edit of a
    prediction is theirs); ``descrip`` replaces it."""
    import nibabel as nib

    if set(axes) - set(NIFTI_AXES) or len(set(axes)) != len(axes) or len(axes) != array.ndim:
        raise ImageFileError(f"axes {axes!r} cannot be written as NIfTI (letters of CTZYX).")
    order = sorted(range(len(axes)), key=lambda i: NIFTI_AXES.index(axes[i]))
    data = array.transpose(order)
    present = "".join(axes[i] for i in order)
    last = NIFTI_AXES.index(present[-1])
    data = data.reshape(
        tuple(data.shape[present.index(a)] if a in present else 1 for a in NIFTI_AXES[: last + 1])
    )
    header = meta.get("nifti_header")
    if header is not None:
        header = header.copy()
        affine = None  # the header's own sform/qform, untouched
    else:
        header = nib.Nifti1Header()
        scale, unit = nifti_sizes(scale, unit)
        affine = meta.get("affine")
        if affine is None:
            affine = np.diag([scale.get(a, 1.0) for a in "XYZ"] + [1.0])
        inverse = {v: k for k, v in NIFTI_UNITS.items() if k != "unknown"}
        header.set_xyzt_units(inverse.get(unit, "unknown"))
    header.set_data_dtype(data.dtype)
    header["scl_slope"], header["scl_inter"] = np.nan, np.nan  # values as they are
    if descrip is not None or is_prediction_descrip(header["descrip"]):
        header["descrip"] = (descrip or b"")[:79]
    kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    image = kind(data, affine, header)
    if affine is not None:
        image.header.set_qform(affine, code=1)
    return image


def nifti_sizes(scale: dict, unit: str | None) -> tuple[dict, str | None]:
    """``scale`` in a unit NIfTI can name (mm, micron, meter): others are converted (nm
    to µm, cm or inch to mm) rather than written under a wrong unit code. Sizes without
    a unit get NIfTI's 'unknown' code, which readers (ours too) take as mm."""
    scale, unit = check_sizes(scale, unit)
    if unit is None or unit in ("mm", "µm", "m"):
        return scale, unit
    into = "µm" if micrometres(unit) < 1 else "mm"
    return in_unit(scale, unit, into), into
