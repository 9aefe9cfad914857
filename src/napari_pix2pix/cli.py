"""Command line: ``napari-pix2pix train|predict|evaluate|info|export|demo``. Thin over the
library: the options of train and predict are made from their declarations
(config.py, run_options.py, through cli_options.py), so the CLI cannot drift from the
API."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from .cli_options import (
    add_config_arguments,
    add_options,
    config_options,
    given_options,
    print_config,
)
from .config import Pix2PixConfig
from .errors import Pix2PixError
from .io.output_paths import reason
from .options import options_of, user_path
from .run_options import BatchOptions, PredictOptions, ScoringOptions, TrainingRun


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="napari-pix2pix", description="pix2pix image-to-image translation."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    declared = {}

    t = sub.add_parser("train", help="train a model on aligned source/target pairs")
    t.add_argument(
        "source",
        nargs="*",  # required, but not by --print-config (checked in cmd_train)
        help="source TIFF(s), several giving several pairs; or SOURCE_DIR TARGET_DIR: two "
        "folders whose files pair up by name",
    )
    t.add_argument(
        "--target",
        "-t",
        nargs="+",
        required=False,
        help="target TIFF(s), one per source (or give SOURCE TARGET positionally)",
    )
    t.add_argument(
        "-o",
        "--output",
        help="model path (.safetensors: one file; otherwise a folder); required",
    )
    t.add_argument(
        "--val-source",
        nargs="+",
        metavar="VAL_SOURCE",
        help="validation source TIFF(s) or folder (default: hold out --val-fraction)",
    )
    t.add_argument(
        "--val-target",
        nargs="+",
        metavar="VAL_TARGET",
        help="validation target TIFF(s) or folder, one per validation source",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing model file that napari-pix2pix wrote",
    )
    declared["train"] = add_options(t, Pix2PixConfig, "model and recipe") + add_options(
        t, TrainingRun, "run"
    )
    add_config_arguments(t, "train")
    t.set_defaults(usage_error=t.error)

    p = sub.add_parser(
        "predict",
        help="apply a model to an image or stack, tile by tile; or to a folder, a glob or "
        "several images, an output each",
    )
    p.add_argument("model")
    p.add_argument(
        "input",
        nargs="+",
        help="the image; or a folder, a glob pattern (quoted) or several images: then -o is "
        "a folder, and each output is named <name><suffix>.<format>",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output path: .tif/.ome.tif (streamed OME-TIFF), .nii/.nii.gz (NIfTI with "
        "the input's affine), .zarr or .ome.zarr (OME-Zarr 0.5 with a pyramid; both "
        "resumable); for several inputs, a folder (made if "
        "missing) that also gets pix2pix-summary.json and .csv",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted .zarr output of the same work "
        "(the same as --if-exists resume)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output that napari-pix2pix wrote "
        "(the same as --if-exists overwrite)",
    )
    p.add_argument(
        "--series",
        type=int,
        metavar="N",
        help="the image (series) to predict in a file that holds several",
    )
    p.add_argument(
        "--level",
        type=int,
        metavar="N",
        help="the resolution level to predict in an OME-Zarr pyramid (default 0, the full one)",
    )
    declared["predict"] = add_options(p, PredictOptions, "prediction") + add_options(
        p, BatchOptions, "several inputs (a folder, a glob or a list)"
    )
    add_config_arguments(p, "predict")

    v = sub.add_parser(
        "evaluate",
        help="score predictions against their targets (MAE, PSNR, SSIM, Pearson r per image "
        "and slice) into CSV and JSON; no model needed",
    )
    v.add_argument("predictions", help="a prediction (image file), or a folder of them")
    v.add_argument(
        "targets",
        help="its target, or a folder of targets named as the predictions (without --suffix)",
    )
    v.add_argument(
        "--mask",
        help="a mask image for every pair, or a folder of masks named as the targets: "
        "pixels where it is nonzero are scored",
    )
    v.add_argument(
        "-o",
        "--output",
        required=True,
        help="the results, NAME.csv or NAME.json: both are written",
    )
    v.add_argument(
        "--overwrite", action="store_true", help="replace results that evaluate wrote before"
    )
    declared["evaluate"] = add_options(v, ScoringOptions, "scoring")

    i = sub.add_parser("info", help="print a model's configuration and training summary")
    i.add_argument("model")

    e = sub.add_parser(
        "export",
        help="write a model as a bioimage.io model zip or an ONNX file "
        '(needs pip install "napari-pix2pix[bioimageio]" or "napari-pix2pix[onnx]")',
    )
    e.add_argument("model")
    e.add_argument(
        "-o", "--output", required=True, help="the bioimage.io package (.zip) or ONNX file (.onnx)"
    )
    e.add_argument(
        "--format",
        choices=("bioimageio", "onnx"),
        help="what to write (default: onnx for an .onnx output, else bioimageio); the "
        "options below, from --name to --test-input, are for bioimageio only",
    )
    e.add_argument("--name", help="model name (letters, digits, spaces, _+-())")
    e.add_argument("--description", help="one or two sentences about the model")
    e.add_argument(
        "--author",
        action="append",
        dest="authors",
        metavar="NAME",
        help="author name (repeat for several)",
    )
    e.add_argument("--license", help="SPDX license id (default CC-BY-4.0)")
    e.add_argument(
        "--test-input", help="TIFF image for the test tensors and cover (default: simulated sample)"
    )
    e.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing .zip or .onnx that napari-pix2pix exported",
    )

    d = sub.add_parser("demo", help="train on the built-in simulated sample, predict a stack")
    d.add_argument("--output", "-o", default="demo_output")
    d.add_argument("--steps", type=int, default=400)
    d.add_argument("--device", default="auto")
    return parser, declared


def main(argv: list[str] | None = None) -> int:
    parser, declared = build_parser()
    args = parser.parse_args(argv)
    options = given_options(args, declared.get(args.command, []))
    try:
        options = {**config_options(args, args.command), **options}  # flags override it
        _refuse_empty_paths(args, declared.get(args.command, []))
        with _terminate_as_interrupt(), _warnings_as_lines():
            return {
                "train": cmd_train,
                "predict": cmd_predict,
                "evaluate": cmd_evaluate,
                "info": cmd_info,
                "export": cmd_export,
                "demo": cmd_demo,
            }[args.command](args, options)
    except Pix2PixError as exc:
        print(f"napari-pix2pix: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system error no check foresaw: still one clear line
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"napari-pix2pix: error: {reason(exc)}{where}.", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "napari-pix2pix: error: out of memory; use smaller tiles or batches "
            "(--tile-size, --batch-size) or a machine with more memory.",
            file=sys.stderr,
        )
        return 2


# the path arguments of the commands, as the usage names them
PATH_ARGUMENTS = {
    "source": "SOURCE",
    "target": "--target",
    "val_source": "--val-source",
    "val_target": "--val-target",
    "model": "MODEL",
    "input": "INPUT",
    "predictions": "PREDICTIONS",
    "targets": "TARGETS",
    "mask": "--mask",
    "output": "-o/--output",
    "test_input": "--test-input",
}


def _refuse_empty_paths(args, declared) -> None:
    """An empty path argument ('' or blanks, as an unset shell variable gives) is
    refused before anything runs: Path('') is the current folder, which would be read
    as a folder of images, or said to be 'a directory'."""
    if args.command == "train" and args.target is None and len(args.source) == 2:
        user_path(args.source[1], "TARGET")  # SOURCE TARGET, given positionally
    for attribute, name in PATH_ARGUMENTS.items():
        values = getattr(args, attribute, None)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str):
                user_path(value, name)
    for o in declared:
        if o.kind == "path" and isinstance(getattr(args, o.keyword, None), str):
            user_path(getattr(args, o.keyword), o.flag)


@contextlib.contextmanager
def _warnings_as_lines():
    """Python warnings (a pixel-size mismatch, a large overlap, smaller tiles) print as
    one line of their own, ``napari-pix2pix: warning: ...``, above any progress bar,
    rather than in Python's format (file, line and source) inside it."""

    def show(message, category, filename, lineno, file=None, line=None):
        from tqdm import tqdm

        tqdm.write(f"napari-pix2pix: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a cluster's time limit, ``timeout``, ``kill``) ends a command as Ctrl-C
    does: training saves the model so far, a prediction leaves what it can resume."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_train(args, options: dict) -> int:
    from tqdm import tqdm

    from .engine.distributed import launch_rank
    from .engine.events import StepEvent, ValidationEvent, WarningEvent
    from .io.checkpoint import check_model_beside_run
    from .io.model_file import check_model_output, save_or_rescue
    from .workflows.run_report import report_of_run
    from .workflows.training import train_iter

    if args.print_config:
        print(print_config(args, options), end="")
        return 0
    if not args.source or args.output is None:
        args.usage_error("the following arguments are required: source, -o/--output")
    sources, targets = args.source, args.target
    if targets is None:
        if len(sources) != 2:
            print(
                "napari-pix2pix: error: give SOURCE TARGET, or sources with --target ...",
                file=sys.stderr,
            )
            return 2
        sources, targets = sources[:1], sources[1:]
    check_model_output(args.output, args.overwrite)  # before training, not after
    check_model_beside_run(args.output, options.get("checkpoint_dir") or options.get("resume"))
    axes, target_axes = options.pop("axes", None), options.pop("target_axes", None)
    val_source, val_target = args.val_source, args.val_target
    started = time.time()  # the run folder's report.html is this run's if written since
    events = train_iter(
        _one(sources),
        _one(targets),
        axes,
        target_axes,
        val_source=_one(val_source),
        val_target=_one(val_target),
        **options,
    )
    model, bar, metrics = None, None, {}
    try:
        for event in events:
            model = event.model
            if isinstance(event, WarningEvent):  # may come before any step: no bar yet
                tqdm.write(f"napari-pix2pix: warning: {event.message}", file=sys.stderr)
                continue
            if bar is None:  # the first step: the arguments and inputs were checked
                initial = max(event.step - 1, 0)
                bar = tqdm(total=event.total, initial=initial, unit="step", desc="training")
            if isinstance(event, StepEvent):
                bar.update(1)
                bar.set_postfix(l1=f"{event.losses['g_l1']:.3f}", **metrics)
            elif isinstance(event, ValidationEvent):
                metrics = {
                    "val_r": f"{event.metrics['pearson_r']:.3f}",
                    "val_psnr": f"{event.metrics['psnr']:.1f}",
                }
    except KeyboardInterrupt:
        events.close()
        if bar:
            bar.close()
        if model is not None and launch_rank() == 0:  # under torchrun: one file, rank 0's
            path, note = save_or_rescue(model, args.output, args.overwrite)
            print(
                f"interrupted: the model trained so far ({model.history.steps_done} "
                f"steps) was saved to {path}. {note}".rstrip(),
                file=sys.stderr,
            )
            _print_report(
                report_of_run(options.get("checkpoint_dir"), options.get("resume"), started)
            )
        return 130
    if bar:
        bar.close()
    if launch_rank() != 0:  # under torchrun the ranks end with the same model: rank 0 saves
        return 0
    path, note = save_or_rescue(model, args.output, args.overwrite)
    if note:
        print(f"napari-pix2pix: {note}", file=sys.stderr)
    print(f"model saved to {path}")
    metrics = model.history.final_metrics
    if metrics:
        print("validation: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    _print_report(report_of_run(options.get("checkpoint_dir"), options.get("resume"), started))
    return 0 if not note else 3


def _print_report(path: Path | None) -> None:
    """Where the run's report is (workflows/run_report.py): a page any browser opens."""
    if path is not None:
        print(f"report: {path}")


def _one(paths: list[str] | None):
    """One path as itself (a folder stays a folder), several as a list."""
    return paths[0] if paths is not None and len(paths) == 1 else paths


def cmd_predict(args, options: dict) -> int:
    from tqdm import tqdm

    from .errors import InputError
    from .io.images import read_image
    from .io.outputs import check_output
    from .workflows.batch_prediction import is_many
    from .workflows.prediction import predict

    if is_many(args.input):
        return _predict_many(args, options)
    batch_flags = [o.flag for o in options_of(BatchOptions) if o.keyword in options]
    if batch_flags:
        raise InputError(
            f"{', '.join(batch_flags)} name the outputs of several inputs (a folder, a glob "
            "or a list); for one input, -o/--output is its output's name."
        )
    args.input = args.input[0]
    if args.resume:
        options["if_exists"] = "resume"
    elif args.overwrite:
        options["if_exists"] = "overwrite"
    # the output is checked before the model is loaded or the input read
    check_output(
        args.output, None, "", options.get("if_exists", "error"), inputs=(args.model, args.input)
    )
    image = (
        read_image(args.input, lazy=True, series=args.series, level=args.level)
        if args.series is not None or args.level is not None
        else args.input
    )
    bars: list = []  # made at the first tile: no bar before the arguments are checked

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="tile", desc="predicting"))
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    try:
        _, out_axes = predict(
            args.model,
            image,
            options.pop("axes", None),
            progress=progress,
            out=args.output,
            return_axes=True,
            **options,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: {args.output} was not completed"
            + (" (rerun with --resume to continue)" if args.output.endswith(".zarr") else ""),
            file=sys.stderr,
        )
        return 130
    finally:
        for bar in bars:
            bar.close()
    print(f"wrote {args.output} (axes {out_axes})")
    return 0


def _predict_many(args, options: dict) -> int:
    """``predict MODEL FOLDER|GLOB|IMAGES... -o FOLDER``: a bar over the files and one
    over the tiles of the file under way; at the end, a line per file and the counts."""
    from tqdm import tqdm

    from .errors import InputError
    from .workflows.batch_prediction import predict_many

    if (
        args.series is not None
        or args.level is not None
        or options.get("if_exists", "error") != "error"  # the default, as a config holds it
    ):
        raise InputError(
            "--series, --level and --if-exists are for one input; with several, existing outputs "
            "are skipped (--overwrite predicts them again) and unfinished .zarr ones resumed."
        )
    bars: dict = {}

    def tiles(done: int, total: int) -> None:
        if "tiles" not in bars:
            bars["tiles"] = tqdm(total=total, unit="tile", desc="tiles", position=1, leave=False)
        bar = bars["tiles"]
        bar.total, bar.n = total, done
        bar.refresh()

    def files(done: int, total: int, outcome) -> None:
        if "files" not in bars:
            bars["files"] = tqdm(total=total, unit="file", desc="files", position=0)
        bars["files"].update(1)
        bars["files"].refresh()  # each file shown as it ends, however soon after the last
        if "tiles" in bars:  # the next file's tiles start from 0
            bars.pop("tiles").close()

    try:
        result = predict_many(
            args.model,
            args.input,
            args.output,
            overwrite=args.overwrite,
            progress=tiles,
            file_progress=files,
            **options,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: what is finished is kept (see {args.output}/pix2pix-summary.csv); "
            "run the same command again to continue (finished outputs are skipped).",
            file=sys.stderr,
        )
        return 130
    finally:
        for bar in bars.values():
            bar.close()
    for o in result.outcomes:
        line = f"{o.status}: {o.input}" + (f" -> {o.output}" if o.status == "done" else "")
        if o.input_score is not None:  # predict's input check (none: no input profile)
            line += f" [input score {o.input_score:.1f}" + (
                f" > {o.input_threshold:g}: unlike the training inputs]" if o.input_above else "]"
            )
        print(line + (f" ({o.reason})" if o.reason else ""))
    counts = ", ".join(f"{len(result.having(s))} {s}" for s in ("done", "skipped", "failed"))
    unlike = sum(o.input_above for o in result.outcomes)
    counts += f", {unlike} unlike the training inputs" if unlike else ""
    print(f"{counts}; summary in {result.summary} and .csv")
    return 1 if result.failed else 0


def cmd_evaluate(args, options: dict) -> int:
    from tqdm import tqdm

    from .workflows.scoring import evaluate_files

    bars: list = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="image", desc="scoring"))
        bars[0].update(1)

    try:
        scores = evaluate_files(
            args.predictions,
            args.targets,
            args.mask,
            out=args.output,
            overwrite=args.overwrite,
            progress=progress,
            **options,
        )
    finally:
        for bar in bars:
            bar.close()
    for row in scores.images:
        name = Path(row["prediction"] or row["target"]).name
        channel = f" channel {row['channel']}" if row["channel"] != "" else ""
        if row["status"] == "failed":
            print(f"failed: {name}{channel} ({row['reason']})")
        else:
            print(f"{name}{channel}: " + _metrics_text(row))
    scored = len(scores.images) - len(scores.failed)
    print(f"mean over {scored} scored: {_metrics_text(scores.mean)}")
    print(f"wrote {scores.csv} and {scores.json}")
    return 1 if scores.failed else 0


def _metrics_text(values: dict) -> str:
    mae, psnr, ssim, r = (values[m] for m in ("mae", "psnr", "ssim", "pearson_r"))
    return f"MAE {mae:.4g}, PSNR {psnr:.2f} dB, SSIM {ssim:.3f}, r {r:.3f}"


def cmd_info(args, options: dict) -> int:
    from .io.model_file import load_model

    model = load_model(args.model)
    print(json.dumps({"summary": model.summary(), "config": model.config.to_dict()}, indent=1))
    return 0


def cmd_export(args, options: dict) -> int:
    from .io.model_file import load_model

    package = {
        "--name": args.name,
        "--description": args.description,
        "--author": args.authors,
        "--license": args.license,
        "--test-input": args.test_input,
    }
    if (args.format or _format_of(args.output)) == "onnx":
        from .errors import InputError
        from .io.onnx_export import OPSET, check_installation, export_onnx

        given = [flag for flag, value in package.items() if value is not None]
        if given:
            raise InputError(
                f"{', '.join(given)} describe a bioimage.io package; an ONNX file has no "
                "such fields. Leave them out, or export with --format bioimageio (.zip)."
            )
        check_installation()
        path = export_onnx(load_model(args.model), args.output, overwrite=args.overwrite)
        print(f"wrote {path} (ONNX, opset {OPSET}; the normalization is in its metadata)")
        return 0

    from .io.bioimageio import check_installation, export_bioimageio

    check_installation()
    model = load_model(args.model)
    path = export_bioimageio(
        model,
        args.output,
        name=args.name,
        description=args.description,
        authors=args.authors,
        license=args.license or "CC-BY-4.0",
        test_input=args.test_input,
        overwrite=args.overwrite,
    )
    print(f"wrote {path} (bioimage.io model package)")
    return 0


def _format_of(output: str) -> str:
    """The export format an output name asks for: .onnx is ONNX, anything else a zip."""
    return "onnx" if output.lower().endswith(".onnx") else "bioimageio"


def cmd_demo(args, options: dict) -> int:
    from .demo import run_demo

    run_demo(Path(args.output), steps=args.steps, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
