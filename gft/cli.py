"""Command line: ``python -m gft pretrain|finetune|sample|evaluate`` (a thin shell over the library)."""

from __future__ import annotations

import argparse
import io
import json
import math
import sys

import numpy as np
import torch

from gft.constants import MAX_MEASURED_POINTS
from gft.core import distributed
from gft.core.checkpoints import (
    atomic_write_bytes,
    check_writable,
    load_checkpoint,
    save_checkpoint,
    write_target,
)
from gft.core.couplings import COUPLINGS
from gft.core.device import DEVICE_CHOICES, resolve_device
from gft.core.sampling import SOLVERS, noise, sample_ode, sample_sde
from gft.core.training import FINETUNE_METHODS, TrainConfig, TrainingDiverged
from gft.tasks.runs import VALIDATION, Monitor, best_point, best_weights, make_trainer, task_for
from gft.tasks.task import Task


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        sys.stderr.write(f"gft: error: {message}\n")
        raise SystemExit(2)


MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer


def _int_in(low: int, high: int | None = None, why: str = ""):
    """An argparse type: an integer in [low, high] (no upper bound when high is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}{why}, got {value}")
        return value

    return parse


_positive_int = _int_in(1)
_seed = _int_in(0, MAX_SEED)
_eval_n = _int_in(10, MAX_MEASURED_POINTS, " (exact W2 needs n^2 memory: 3.2 GB at the bound)")


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _add_training_args(p: argparse.ArgumentParser, steps: int) -> None:
    p.add_argument("--data", required=True, help="registered 2D name, file:PATH (.npy/.csv, N x 2), digits:CLASSES[+TRANSFORM] or images:PATH[#X[,Y]][:CLASSES]")
    p.add_argument("--steps", type=_positive_int, default=steps)
    p.add_argument("--batch", type=_positive_int, default=None, help="default 256 (2D) or 128 (images); under torchrun, per process")
    p.add_argument("--lr", type=_float, default=1e-3)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--coupling", choices=COUPLINGS, default="independent")
    p.add_argument("--sinkhorn-reg", type=_float, default=0.5, help="entropic regularisation, in units of the squared cost")
    p.add_argument("--sigma", type=_float, default=0.0, help="path noise level (0: deterministic straight paths)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--eval-every", type=_int_in(0), default=500, help="W2 against held-out target draws every N steps (0: never)")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only N training samples of the target")
    p.add_argument("--out", required=True, help="checkpoint path to write (atomically)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    p.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up from 0")
    p.add_argument("--ema", type=_float, default=0.0, help="EMA decay of the weights, e.g. 0.999 (0: off); the EMA is saved")
    p.add_argument("--val-fraction", type=_float, default=0.0,
                   help="hold out this share of the training samples; their energy distance is measured every --eval-every steps")
    p.add_argument("--keep", choices=("last", "best"), default="last",
                   help="save the last weights, or those with the lowest validation energy (needs --val-fraction)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gft", description="Flow matching and Gradual Fine-Tuning (GFT).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("pretrain", help="train a flow model with plain flow matching")
    _add_training_args(p, steps=3000)
    p.add_argument("--width", type=_positive_int, default=None, help="MLP hidden units (default 128); images: convnet channels (default by size: 16 at 8x8, 32 at 28x28)")
    p.add_argument("--depth", type=_positive_int, default=None, help="MLP layers (default 3); images: residual blocks per level (default by size: 1 or 2)")
    p.add_argument("--score-head", action="store_true", help="also learn the score (for SDE sampling)")
    p.add_argument("--upsample", type=int, choices=(1, 2), default=1, help="images: run the convnet at 2x resolution")

    p = sub.add_parser("finetune", help="fine-tune a pretrained model on a new target")
    _add_training_args(p, steps=3000)
    p.add_argument("--base", required=True, help="pretrained checkpoint")
    p.add_argument("--method", choices=FINETUNE_METHODS, default="gft")
    p.add_argument("--schedule", default="stages:10,0.5,5", help="constant:TAU | linear:TAU_MAX | cosine:TAU_MAX | exponential:TAU_MAX,RATE | stages:TAU_MAX,RATIO,K | piecewise:P/TAU,...")
    p.add_argument("--final-fraction", type=_float, default=0.2, help="share of steps at tau = 0 (annealed schedules)")
    p.add_argument("--tau-end", type=_float, default=0.0, help="gft: stop temperature; the anneal ends at this tau > 0 instead of tau = 0")
    p.add_argument("--anchor-weight", type=_float, default=0.0, help="l2sp: weight of |theta - theta_pre|^2")

    p = sub.add_parser("sample", help="draw samples from a checkpoint")
    p.add_argument("--model", required=True)
    p.add_argument("--n", type=_positive_int, default=2000)
    p.add_argument("--solver", choices=SOLVERS, default="dopri5")
    p.add_argument("--steps", type=_positive_int, default=100, help="solver steps (dopri5: output grid only)")
    p.add_argument("--diffusion", type=_float, default=1.0, help="sde: diffusion level g")
    p.add_argument("--score", choices=("head", "identity"), default="head", help="sde: where the score comes from")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--out", required=True, help=".npy file of samples")
    p.add_argument("--trajectory", default=None, help="also write the (steps+1, n, ...) trajectory here")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("evaluate", help="metrics of a checkpoint against a target")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=_eval_n, default=2000, help=f"samples, at most {MAX_MEASURED_POINTS}")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--json", action="store_true")
    return parser


def _check_outputs(outputs: dict[str, str | None]) -> None:
    """Every output (flag -> path) writable and distinct, checked before any work or any write."""
    seen: dict = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        target = write_target(path).resolve()
        if target in seen:
            raise ValueError(f"{flag} {path} is the same file as {seen[target]}")
        seen[target] = flag
        try:
            check_writable(path)
        except OSError as exc:
            raise ValueError(f"{flag} {path} cannot be written ({exc.strerror or exc})") from None


def _check_npy_suffix(flag: str, path: str | None) -> None:
    if path is not None and not str(path).endswith(".npy"):
        raise ValueError(f"{flag} must end in .npy, got {path!r}")


def _train_config(args: argparse.Namespace, method: str, task: Task) -> TrainConfig:
    return TrainConfig(
        method=method,
        steps=args.steps,
        batch=task.default_batch if args.batch is None else args.batch,
        lr=args.lr,
        seed=args.seed,
        schedule=getattr(args, "schedule", "constant:0"),
        final_fraction=getattr(args, "final_fraction", 0.2),
        coupling=args.coupling,
        sinkhorn_reg=args.sinkhorn_reg,
        sigma=args.sigma,
        device=args.device,
        callback_every=max(1, min(100, args.steps // 20 or 1)),
        tau_end=getattr(args, "tau_end", 0.0),
        anchor_weight=getattr(args, "anchor_weight", 0.0),
        warmup=args.warmup,
        ema=args.ema,
    )


def _progress(quiet: bool, metric: str):
    def report(snap) -> None:
        if quiet:
            return
        value = snap.values.get(metric)
        shown = f"  {metric.upper()} {value:.3f}" if value is not None else ""
        loss = "-" if snap.loss is None else f"{snap.loss:.4f}"  # None at step 0: nothing trained yet
        print(f"step {snap.step:>6}/{snap.total_steps}  tau {snap.tau:8.3f}  lambda {snap.lam:.3f}  loss {loss}{shown}", flush=True)

    return report


def _run_training(args, method: str, task: Task, base=None, model_config=None, extra: dict | None = None) -> dict:
    config = _train_config(args, method, task)
    if args.limit is not None and args.limit > (available := len(task.pool(args.seed))):
        raise ValueError(f"--limit {args.limit} exceeds the {available} training samples of {task.data}")
    if args.keep == "best" and not args.val_fraction:
        raise ValueError("--keep best chooses by validation energy: give --val-fraction too")
    monitor = Monitor(eval_every=max(args.eval_every, 0), eval_points=1000, val_fraction=args.val_fraction)
    shard = distributed.setup(resolve_device(config.device))  # None unless started by torchrun with 2+ processes
    finished = False
    try:
        trainer = make_trainer(task, config, base=base, model_config=model_config, limit=args.limit, monitor=monitor, shard=shard)
        try:
            result = trainer.run(callback=_progress(args.json or not distributed.is_main_process(), task.metric))
        finally:
            trainer.close()
        finished = True
    finally:
        distributed.teardown(finished)
    chosen, keep = trainer.result_model, {}
    best = best_point(result.history)
    if best is not None:
        keep = {"keep": args.keep, "best_step": best["step"], "best_tau": best["tau"], "val_energy": best[VALIDATION]}
        if args.keep == "best":
            chosen = best_weights(trainer).best_model(trainer.result_model)
    extra = dict(extra or {}, history=result.history, limit=args.limit, eval_every=monitor.eval_every,
                 output=task.output_info(), **keep)
    replaced = write_target(args.out).exists()  # another run may have written it while this one trained
    if distributed.is_main_process():  # every rank holds the same weights; one writes them
        save_checkpoint(args.out, chosen, task.data, config.to_dict(), extra)
    return {
        **keep,
        "command": args.command,
        "out": str(args.out),
        "replaced": replaced,
        "steps": result.steps,
        "train_seconds": result.train_seconds,
        "steps_per_second": result.steps_per_second,
        "final_loss": result.final_loss,
        "ot_seconds_per_batch": result.ot_seconds_per_batch,
        "device": str(trainer.device),
        "world_size": 1 if shard is None else shard.world_size,
        "history": result.history,
    }


def cmd_pretrain(args) -> dict:
    _check_outputs({"--out": args.out})
    task = task_for(args.data)
    model_config = task.model_config(width=args.width, depth=args.depth, score_head=args.score_head, upsample=args.upsample)
    return _run_training(args, "pretrain", task, model_config=model_config, extra={"parent": None})


def _same_kind(task: Task, trained_on: str, role: str) -> None:
    if task_for(trained_on).kind != task.kind:
        raise ValueError(f"{role} was trained on {trained_on!r}, which does not match the kind of --data {task.data!r}")


def cmd_finetune(args) -> dict:
    _check_outputs({"--out": args.out})
    task = task_for(args.data)
    base = load_checkpoint(args.base)
    _same_kind(task, base.data, "--base")
    return _run_training(args, args.method, task, base=base.model, extra={"parent": str(args.base), "base_data": base.data})


def cmd_sample(args) -> dict:
    _check_npy_suffix("--out", args.out)
    _check_npy_suffix("--trajectory", args.trajectory)
    _check_outputs({"--out": args.out, "--trajectory": args.trajectory})
    ckpt = load_checkpoint(args.model)
    # The recorded output scaling writes samples as the training data was laid out, file or no file.
    task = task_for(ckpt.data, output=ckpt.extra.get("output"))
    device = resolve_device(args.device)
    model = ckpt.model.to(device)
    x0 = noise(args.n, model.config.data_shape, args.seed, device)
    keep = args.trajectory is not None
    if args.solver == "sde":
        gen = torch.Generator(device=device).manual_seed(args.seed + 1)
        res = sample_sde(model, x0, args.steps, args.diffusion, args.score, gen, keep, training=ckpt.training_settings)
    else:
        res = sample_ode(model, x0, args.solver, args.steps, keep_trajectory=keep)
    x = task.to_output(res.x.cpu()).numpy().astype(np.float32)
    trajectory = task.to_output(res.trajectory.cpu()).numpy().astype(np.float32) if keep else None
    if not np.isfinite(x).all() or (trajectory is not None and not np.isfinite(trajectory).all()):
        raise ValueError(f"samples of {args.model} are not finite (its velocity overflowed on the {args.solver} grid); nothing was written")
    replaced = write_target(args.out).exists()
    _save_npy(args.out, x)
    if trajectory is not None:
        _save_npy(args.trajectory, trajectory)
    return {"command": "sample", "out": str(args.out), "replaced": replaced, "shape": list(x.shape), "nfe": res.nfe, "solver": args.solver}


def _save_npy(path: str, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def cmd_evaluate(args) -> dict:
    ckpt = load_checkpoint(args.model)
    task = task_for(args.data)
    _same_kind(task, ckpt.data, "the model")
    # The training subset of a --limit run is only known for the data the model was trained on.
    limit = ckpt.extra.get("limit") if task.data == ckpt.data else None
    evaluation = task.evaluate(ckpt.model, n=args.n, seed=args.seed, device=resolve_device(args.device), limit=limit, train_seed=ckpt.train.get("seed"))
    return {"command": "evaluate", "model": str(args.model), "data": task.data, **evaluation.to_dict()}


COMMANDS = {"pretrain": cmd_pretrain, "finetune": cmd_finetune, "sample": cmd_sample, "evaluate": cmd_evaluate}


def _print_human(summary: dict) -> None:
    for key, value in summary.items():
        if key == "history":
            continue
        if isinstance(value, float):
            value = f"{value:.4g}"
        print(f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = COMMANDS[args.command](args)
    except (ValueError, TrainingDiverged, RuntimeError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"gft {args.command}: error: {message}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"gft {args.command}: interrupted; nothing was written\n")
        return 130
    if not distributed.is_main_process():
        return 0  # a torchrun rank other than 0: rank 0 reports for the job
    if args.json:
        print(json.dumps(summary, default=float))
    else:
        _print_human(summary)
    return 0
