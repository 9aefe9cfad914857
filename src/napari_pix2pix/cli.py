"""Command line: ``napari-pix2pix train|predict|info|export|demo``. Thin over the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import Pix2PixError


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-pix2pix",
                                     description="pix2pix image-to-image translation.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on an aligned source/target pair")
    t.add_argument("source", nargs="+", help="source TIFF(s); several give several pairs")
    t.add_argument("--target", "-t", nargs="+", required=False,
                   help="target TIFF(s), one per source (or give SOURCE TARGET positionally)")
    t.add_argument("-o", "--output", required=True,
                   help="model path (.safetensors: one file; otherwise a folder)")
    t.add_argument("--axes", help="source axes, e.g. YX, CYX, ZYX (default: from the file)")
    t.add_argument("--target-axes", help="target axes (default: like the source, or from the file)")
    t.add_argument("--steps", type=_positive_int,
                   help="training steps (default 2000; with --resume, the checkpoint's)")
    t.add_argument("--patch-size", type=_positive_int, default=256)
    t.add_argument("--batch-size", type=_positive_int, default=4)
    t.add_argument("--depth", type=_positive_int, default=8)
    t.add_argument("--base-channels", type=_positive_int, default=64)
    t.add_argument("--lambda-l1", type=float, default=100.0)
    t.add_argument("--gan-mode", default="vanilla", choices=["vanilla", "lsgan", "hinge", "none"])
    t.add_argument("--gan-warmup", type=float, default=0.1,
                   help="share of steps with L1 only before the adversarial term ramps in")
    t.add_argument("--foreground-crops", type=float, default=0.5,
                   help="share of crops centred on target foreground")
    t.add_argument("--disc-layers", type=_positive_int, default=3)
    t.add_argument("--disc-channels", type=_positive_int, default=64)
    t.add_argument("--spatial-dims", type=int, default=2, choices=[2, 3])
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--device", default="auto")
    t.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-dir", help="keep a resumable checkpoint here")
    t.add_argument("--checkpoint-every", type=_positive_int)
    t.add_argument("--resume", help="checkpoint folder of an interrupted run to continue")

    p = sub.add_parser("predict", help="apply a model to an image or stack, tile by tile")
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True,
                   help="output path: .tif/.ome.tif (streamed OME-TIFF) or .zarr (resumable)")
    p.add_argument("--axes", help="input axes (default: from the file, else the model's)")
    p.add_argument("--tile-size", type=_positive_int)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--batch-size", type=_positive_int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="off", choices=["auto", "off", "bf16", "fp16"])
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted .zarr output instead of overwriting it")

    i = sub.add_parser("info", help="print a model's configuration and training summary")
    i.add_argument("model")

    e = sub.add_parser("export", help="write a model as a bioimage.io model zip "
                       '(needs pip install "napari-pix2pix[bioimageio]")')
    e.add_argument("model")
    e.add_argument("-o", "--output", required=True, help="the bioimage.io package (.zip)")
    e.add_argument("--name", help="model name (letters, digits, spaces, _+-())")
    e.add_argument("--description", help="one or two sentences about the model")
    e.add_argument("--author", action="append", dest="authors", metavar="NAME",
                   help="author name (repeat for several)")
    e.add_argument("--license", default="CC-BY-4.0", help="SPDX license id (default CC-BY-4.0)")
    e.add_argument("--test-input",
                   help="TIFF image for the test tensors and cover (default: simulated sample)")

    d = sub.add_parser("demo", help="train on the built-in simulated sample, predict a stack")
    d.add_argument("--output", "-o", default="demo_output")
    d.add_argument("--steps", type=_positive_int, default=400)
    d.add_argument("--device", default="auto")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "predict": cmd_predict, "info": cmd_info,
                "export": cmd_export, "demo": cmd_demo}[args.command](args)
    except Pix2PixError as exc:
        print(f"napari-pix2pix: error: {exc}", file=sys.stderr)
        return 2


def cmd_train(args) -> int:
    from tqdm import tqdm

    from .data import check_output_path
    from .training import StepEvent, ValidationEvent, train_iter

    sources, targets = args.source, args.target
    if targets is None:
        if len(sources) != 2:
            print("napari-pix2pix: error: give SOURCE TARGET, or sources with --target ...",
                  file=sys.stderr)
            return 2
        sources, targets = sources[:1], sources[1:]
    check_output_path(args.output)
    events = train_iter(
        sources, targets, args.axes, args.target_axes, steps=args.steps,
        patch_size=args.patch_size, batch_size=args.batch_size, depth=args.depth,
        base_channels=args.base_channels, lambda_l1=args.lambda_l1, gan_mode=args.gan_mode,
        gan_warmup=args.gan_warmup, foreground_crops=args.foreground_crops,
        disc_layers=args.disc_layers, disc_channels=args.disc_channels, spatial_dims=args.spatial_dims,
        val_fraction=args.val_fraction, device=args.device, amp=args.amp, seed=args.seed,
        checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
        resume=args.resume)
    model, bar, metrics = None, None, {}
    try:
        for event in events:
            model = event.model
            if bar is None:
                bar = tqdm(total=event.total, initial=event.step - 1, unit="step", desc="training")
            if isinstance(event, StepEvent):
                bar.update(1)
                bar.set_postfix(l1=f"{event.losses['g_l1']:.3f}", **metrics)
            elif isinstance(event, ValidationEvent):
                metrics = {"val_r": f"{event.metrics['pearson_r']:.3f}",
                           "val_psnr": f"{event.metrics['psnr']:.1f}"}
    except KeyboardInterrupt:
        events.close()
        if bar:
            bar.close()
        if model is not None:
            model.save(args.output)
            print(f"interrupted: the model trained so far ({model.history.get('steps_done')} steps) "
                  f"was saved to {args.output}", file=sys.stderr)
        return 130
    if bar:
        bar.close()
    model.save(args.output)
    print(f"model saved to {args.output}")
    if model.history.get("final_metrics"):
        print("validation: " + ", ".join(f"{k} {v:.4g}" for k, v in model.history["final_metrics"].items()))
    return 0


def cmd_predict(args) -> int:
    from tqdm import tqdm

    from .data import check_output_path
    from .model import load_model
    from .prediction import predict

    check_output_path(args.output, folder_ok=args.output.endswith(".zarr"))
    model = load_model(args.model)
    with tqdm(unit="tile", desc="predicting") as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            _, out_axes = predict(model, args.input, axes=args.axes.upper() if args.axes else None,
                                  tile_size=args.tile_size, overlap=args.overlap,
                                  batch_size=args.batch_size, device=args.device, amp=args.amp,
                                  progress=progress, out=args.output, return_axes=True,
                                  if_exists="resume" if args.resume else "overwrite")
        except KeyboardInterrupt:
            print(f"interrupted: {args.output} was not completed"
                  + (" (rerun with --resume to continue)" if args.output.endswith(".zarr") else ""),
                  file=sys.stderr)
            return 130
    print(f"wrote {args.output} (axes {out_axes})")
    return 0


def cmd_info(args) -> int:
    from .model import load_model

    model = load_model(args.model)
    print(json.dumps({"summary": model.summary(), "config": model.config.to_dict()}, indent=1))
    return 0


def cmd_export(args) -> int:
    from .bioimageio import check_installation, export_bioimageio
    from .model import load_model

    check_installation()
    model = load_model(args.model)
    path = export_bioimageio(model, args.output, name=args.name, description=args.description,
                             authors=args.authors, license=args.license,
                             test_input=args.test_input)
    print(f"wrote {path} (bioimage.io model package)")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.output), steps=args.steps, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
