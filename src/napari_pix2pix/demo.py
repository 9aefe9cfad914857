"""The end-to-end demo: train on the built-in simulated pair, apply the model tile-wise
to an unseen stack read from TIFF, write OME-TIFF results, a PNG preview and a metrics
table. It exercises the same calls a lab pipeline would use."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .engine.device import resolve_device
from .engine.events import StepEvent, ValidationEvent
from .engine.metrics import image_metrics
from .engine.normalization import Normalization
from .engine.sample_data import make_pair, make_stack
from .errors import InputError
from .io.images import write_image
from .options import user_path
from .workflows.prediction import predict
from .workflows.run_setup import check_run_options
from .workflows.training import train_iter

# A CPU-friendly recipe: the paper's architecture, shallower and narrower.
DEMO_OPTIONS = dict(patch_size=128, depth=7, base_channels=32, batch_size=4, disc_channels=32)
PIXEL_SIZE_UM = 0.65


def _to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    return (np.clip((image - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def save_preview(
    path: Path, panels: list[tuple[str, np.ndarray]], ranges: list[tuple[float, float]]
):
    """Side-by-side PNG of same-size 2D panels with their titles."""
    from PIL import Image, ImageDraw

    tiles = [_to_uint8(p, *r) for (_, p), r in zip(panels, ranges)]
    h, w = tiles[0].shape
    canvas = Image.new("L", (w * len(tiles) + 8 * (len(tiles) - 1), h + 20), 255)
    draw = ImageDraw.Draw(canvas)
    for i, ((title, _), tile) in enumerate(zip(panels, tiles)):
        canvas.paste(Image.fromarray(tile), (i * (w + 8), 20))
        draw.text((i * (w + 8) + 4, 4), title, fill=0)
    canvas.save(path)


MARKER = "napari-pix2pix-demo.txt"


def demo_folder(out_dir: Path) -> Path:
    """The demo's own folder: new, empty, or an earlier demo's (marked), whose files it
    replaces; any other folder is left alone."""
    out_dir = user_path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{str(out_dir)!r} is a file; give the demo a folder of its own.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise InputError(
            f"{str(out_dir)!r} already holds files that the demo did not write; "
            "give the demo a new folder (--output)."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text(
        "Written by `napari-pix2pix demo`, which may replace the files here when it runs again.\n"
    )
    return out_dir


def write_demo_data(out_dir: Path, seed: int = 0):
    """The simulated training pair and unseen stack, as OME-TIFFs in the demo's folder."""
    source, target = make_pair((768, 768), seed=seed)
    stack_source, stack_target = make_stack(6, (384, 512), seed=seed + 1000)
    _write_own(out_dir / "train_source.ome.tif", source, "YX")
    _write_own(out_dir / "train_target.ome.tif", target, "YX")
    _write_own(out_dir / "stack_source.ome.tif", stack_source, "TYX")
    _write_own(out_dir / "stack_target.ome.tif", stack_target, "TYX")
    return source, target, stack_source, stack_target


def _write_own(path: Path, array: np.ndarray, axes: str) -> None:
    """Written as the user's images (no prediction mark), so that no overwrite option
    ever replaces them; the demo itself replaces an earlier demo's copy, in the folder
    that demo_folder found to be its own."""
    path.unlink(missing_ok=True)
    write_image(path, array, axes, {"Y": PIXEL_SIZE_UM, "X": PIXEL_SIZE_UM}, "µm")


def run_demo(out_dir: Path, steps: int = 400, device: str = "auto", seed: int = 0) -> dict:
    # the options first: a typo must not leave a folder of files behind
    check_run_options({**DEMO_OPTIONS, "steps": steps, "device": device, "seed": seed}, "YX")
    resolve_device(device)
    out_dir = demo_folder(out_dir)
    print(f"napari-pix2pix demo -> {out_dir}/")
    source, target, stack_source, stack_target = write_demo_data(out_dir, seed)

    started = time.perf_counter()
    print(f"training {steps} steps on a 768x768 simulated pair (phase contrast -> nuclei)")
    model = None
    for event in train_iter(
        out_dir / "train_source.ome.tif",
        out_dir / "train_target.ome.tif",
        axes="YX",
        steps=steps,
        device=device,
        seed=seed,
        val_every=max(1, steps // 4),
        **DEMO_OPTIONS,
    ):
        model = event.model
        if isinstance(event, StepEvent) and (event.step % 50 == 0 or event.step == 1):
            print(
                f"  step {event.step:5d}/{event.total}  L1 {event.losses['g_l1']:.4f}  "
                f"G-GAN {event.losses.get('g_gan', 0):.3f}  {event.elapsed:6.1f} s",
                flush=True,
            )
        elif isinstance(event, ValidationEvent):
            print("  validation  " + "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items()))
    train_seconds = time.perf_counter() - started
    model.save(out_dir / "model.safetensors", overwrite=True)

    print("predicting the unseen 6-slice stack tile-wise (stack_source.ome.tif)")
    started = time.perf_counter()
    prediction, axes = predict(
        out_dir / "model.safetensors",
        out_dir / "stack_source.ome.tif",
        tile_size=128,
        overlap=0.25,
        device=device,
        return_axes=True,
    )
    predict_seconds = time.perf_counter() - started
    _write_own(out_dir / "stack_prediction.ome.tif", prediction, axes)

    cfg = model.config
    target_norm = Normalization.of(cfg, "target")
    held_out = image_metrics(
        prediction[:, None], stack_target[:, None].astype(np.float32), target_norm
    )
    constant = np.full_like(prediction, float(np.mean(target)))
    baseline = image_metrics(
        constant[:, None], stack_target[:, None].astype(np.float32), target_norm
    )
    lo, hi = cfg.target_low[0], cfg.target_high[0]
    save_preview(
        out_dir / "preview.png",
        [
            ("source (phase)", stack_source[0]),
            ("pix2pix prediction", prediction[0]),
            ("target (fluorescence)", stack_target[0]),
        ],
        [tuple(np.percentile(stack_source[0], [0.5, 99.5])), (lo, hi), (lo, hi)],
    )
    report = {
        "held_out_stack": held_out,
        "constant_mean_baseline": baseline,
        "train_steps": steps,
        "train_seconds": train_seconds,
        "steps_per_second": steps / train_seconds,
        "predict_seconds": predict_seconds,
        "validation": model.history.final_metrics,
    }
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=1))
    print("\nheld-out stack (6 unseen fields, target units)")
    print(f"  {'':22s} {'MAE':>9s} {'PSNR':>7s} {'SSIM':>6s} {'r':>6s}")
    for name, m in (("pix2pix", held_out), ("constant mean", baseline)):
        print(
            f"  {name:22s} {m['mae']:9.1f} {m['psnr']:7.2f} {m['ssim']:6.3f} {m['pearson_r']:6.3f}"
        )
    print(
        f"training {train_seconds:.0f} s ({steps / train_seconds:.2f} steps/s), "
        f"prediction {predict_seconds:.1f} s"
    )
    print(f"outputs: {', '.join(sorted(p.name for p in out_dir.iterdir()))}")
    return report
