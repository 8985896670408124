"""Command line: ``python -m gft pretrain|finetune|sample|evaluate`` (a thin shell over the library)."""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import torch

from gft.core.checkpoints import load_checkpoint, save_checkpoint
from gft.core.couplings import COUPLINGS
from gft.core.device import DEVICE_CHOICES, resolve_device
from gft.core.models import ModelConfig, build_model, build_seeded
from gft.core.sampling import SOLVERS, noise, sample_ode, sample_sde
from gft.core.training import TrainConfig, Trainer, TrainingDiverged
from gft.data import DataSpec
from gft.evaluation.points import evaluate_2d

DEFAULT_POOL = 20_000  # training points drawn from a registered 2D distribution


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        sys.stderr.write(f"gft: error: {message}\n")
        raise SystemExit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _add_training_args(p: argparse.ArgumentParser, steps: int) -> None:
    p.add_argument("--data", required=True, help="registered 2D name, file:PATH (.npy/.csv, N x 2) or digits:CLASSES[+TRANSFORM]")
    p.add_argument("--steps", type=_positive_int, default=steps)
    p.add_argument("--batch", type=_positive_int, default=None, help="default 256 (2D) or 128 (digits)")
    p.add_argument("--lr", type=_float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--coupling", choices=COUPLINGS, default="independent")
    p.add_argument("--sinkhorn-reg", type=_float, default=0.5, help="entropic regularisation, in units of the squared cost")
    p.add_argument("--sigma", type=_float, default=0.0, help="path noise level (0: deterministic straight paths)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--eval-every", type=int, default=500, help="W2 against held-out target draws every N steps (0: never)")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only N training samples of the target")
    p.add_argument("--out", required=True, help="checkpoint path to write (atomically)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gft", description="Flow matching and Gradual Fine-Tuning (GFT).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("pretrain", help="train a flow model with plain flow matching")
    _add_training_args(p, steps=3000)
    p.add_argument("--width", type=_positive_int, default=None, help="MLP hidden units (default 128); digits: convnet channels (default 16)")
    p.add_argument("--depth", type=_positive_int, default=None, help="MLP layers (default 3); digits: residual blocks per level (default 1)")
    p.add_argument("--score-head", action="store_true", help="also learn the score (for SDE sampling)")
    p.add_argument("--upsample", type=int, choices=(1, 2), default=1, help="images: run the convnet at 2x resolution")

    p = sub.add_parser("finetune", help="fine-tune a pretrained model on a new target")
    _add_training_args(p, steps=3000)
    p.add_argument("--base", required=True, help="pretrained checkpoint")
    p.add_argument("--method", choices=("gft", "standard", "scratch"), default="gft")
    p.add_argument("--schedule", default="stages:10,0.5,5", help="constant:TAU | linear:TAU_MAX | cosine:TAU_MAX | exponential:TAU_MAX,RATE | stages:TAU_MAX,RATIO,K | piecewise:P/TAU,...")
    p.add_argument("--final-fraction", type=_float, default=0.2, help="share of steps at tau = 0 (annealed schedules)")

    p = sub.add_parser("sample", help="draw samples from a checkpoint")
    p.add_argument("--model", required=True)
    p.add_argument("--n", type=_positive_int, default=2000)
    p.add_argument("--solver", choices=SOLVERS, default="dopri5")
    p.add_argument("--steps", type=_positive_int, default=100, help="solver steps (dopri5: output grid only)")
    p.add_argument("--diffusion", type=_float, default=1.0, help="sde: diffusion level g")
    p.add_argument("--score", choices=("head", "identity"), default="head", help="sde: where the score comes from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--out", required=True, help=".npy file of samples")
    p.add_argument("--trajectory", default=None, help="also write the (steps+1, n, ...) trajectory here")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("evaluate", help="metrics of a checkpoint against a target")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=_positive_int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--json", action="store_true")
    return parser


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")


def _target(spec: DataSpec, seed: int, limit: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Training pool and held-out evaluation set."""
    if spec.is_image:
        from gft.tasks import digits as images

        return images.target_sets(spec.text, limit=limit, seed=seed)
    pool = spec.points(DEFAULT_POOL, seed)
    if limit is not None:
        if limit > len(pool):
            raise ValueError(f"--limit {limit} exceeds the {len(pool)} available samples")
        pool = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:limit]]
    held_out = None if spec.is_file else spec.points(2000, seed + 1_000_003)
    return pool, held_out


def _train_config(args: argparse.Namespace, method: str, image: bool = False) -> TrainConfig:
    _check_seed(args.seed)
    if args.batch is not None:
        batch = args.batch
    elif image:
        from gft.tasks import digits as images

        batch = images.DEFAULT_BATCH
    else:
        batch = 256
    return TrainConfig(
        method=method,
        steps=args.steps,
        batch=batch,
        lr=args.lr,
        seed=args.seed,
        schedule=getattr(args, "schedule", "constant:0"),
        final_fraction=getattr(args, "final_fraction", 0.2),
        coupling=args.coupling,
        sinkhorn_reg=args.sinkhorn_reg,
        sigma=args.sigma,
        device=args.device,
        callback_every=max(1, min(100, args.steps // 20 or 1)),
        eval_every=max(args.eval_every, 0),
        eval_points=1000,
    )


def _progress(quiet: bool, metric: str = "W2"):
    def report(snap) -> None:
        if quiet:
            return
        w2 = f"  {metric} {snap.w2:.3f}" if snap.w2 is not None else ""
        loss = "-" if snap.loss is None else f"{snap.loss:.4f}"  # None at step 0: nothing trained yet
        print(f"step {snap.step:>6}/{snap.total_steps}  tau {snap.tau:8.3f}  lambda {snap.lam:.3f}  loss {loss}{w2}", flush=True)

    return report


def _run_training(args, method: str, model, pretrained, spec: DataSpec, extra: dict) -> dict:
    config = _train_config(args, method, spec.is_image)
    train_pool, held_out = _target(spec, args.seed, args.limit)
    eval_fn = None
    if spec.is_image:
        from gft.tasks import digits as images

        eval_fn = images.training_eval_fn(spec.text, args.seed)
    trainer = Trainer(model, train_pool, config, pretrained, held_out, eval_fn=eval_fn)
    try:
        result = trainer.run(callback=_progress(args.json, "FD" if spec.is_image else "W2"))
    finally:
        trainer.close()
    extra = dict(extra, history=result.history, limit=args.limit)
    save_checkpoint(args.out, trainer.model, spec.text, config.to_dict(), extra)
    summary = {
        "command": args.command,
        "out": str(args.out),
        "steps": result.steps,
        "train_seconds": result.train_seconds,
        "steps_per_second": result.steps_per_second,
        "final_loss": result.final_loss,
        "ot_seconds_per_batch": result.ot_seconds_per_batch,
        "device": str(trainer.device),
        "history": result.history,
    }
    return summary


def cmd_pretrain(args) -> dict:
    spec = DataSpec(args.data)
    if spec.is_image:
        from gft.tasks import digits as images

        config = images.model_config(upsample=args.upsample, width=args.width, score_head=args.score_head, depth=args.depth)
    else:
        width = 128 if args.width is None else args.width
        config = ModelConfig(width=width, depth=3 if args.depth is None else args.depth, score_head=args.score_head)
    model = build_seeded(config, args.seed)
    return _run_training(args, "pretrain", model, None, spec, {"parent": None})


def cmd_finetune(args) -> dict:
    spec = DataSpec(args.data)
    base = load_checkpoint(args.base)
    if DataSpec(base.data).is_image != spec.is_image:
        raise ValueError(f"--base was trained on {base.data!r}, which does not match the kind of --data {spec.text!r}")
    model = build_model(base.model.config)
    return _run_training(args, args.method, model, base.model, spec, {"parent": str(args.base), "base_data": base.data})


def _output_transform(ckpt):
    if DataSpec(ckpt.data).is_image:
        from gft.tasks import digits as images

        return images.to_pixels
    return lambda x: x


def cmd_sample(args) -> dict:
    _check_seed(args.seed)
    ckpt = load_checkpoint(args.model)
    device = resolve_device(args.device)
    model = ckpt.model.to(device)
    x0 = noise(args.n, model.config.data_shape, args.seed, device)
    keep = args.trajectory is not None
    if args.solver == "sde":
        gen = torch.Generator(device=device).manual_seed(args.seed + 1)
        res = sample_sde(model, x0, args.steps, args.diffusion, args.score, gen, keep, training=ckpt.training_settings)
    else:
        res = sample_ode(model, x0, args.solver, args.steps, keep_trajectory=keep)
    to_out = _output_transform(ckpt)
    x = to_out(res.x.cpu()).numpy().astype(np.float32)
    _save_npy(args.out, x)
    if keep:
        _save_npy(args.trajectory, to_out(res.trajectory.cpu()).numpy().astype(np.float32))
    return {"command": "sample", "out": str(args.out), "shape": list(x.shape), "nfe": res.nfe, "solver": args.solver}


def _save_npy(path: str, array: np.ndarray) -> None:
    import io

    from gft.core.checkpoints import atomic_write_bytes

    if not str(path).endswith(".npy"):
        raise ValueError(f"output path must end in .npy, got {path!r}")
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def cmd_evaluate(args) -> dict:
    _check_seed(args.seed)
    ckpt = load_checkpoint(args.model)
    spec = DataSpec(args.data)
    device = resolve_device(args.device)
    if spec.is_image != DataSpec(ckpt.data).is_image:
        raise ValueError(f"the model was trained on {ckpt.data!r}; it cannot be evaluated on {spec.text!r}")
    if spec.is_image:
        from gft.tasks import digits as images

        # The training subset of a --limit run is only known for the spec the model was trained on.
        limit = ckpt.extra.get("limit") if spec.text == ckpt.data else None
        metrics = images.evaluate_images(
            ckpt.model.to(device), spec.text, n=args.n, seed=args.seed, limit=limit, train_seed=ckpt.train.get("seed")
        )
    else:
        metrics = evaluate_2d(ckpt.model, spec, n=args.n, seed=args.seed, device=device).to_dict()
    return {"command": "evaluate", "model": str(args.model), "data": spec.text, **metrics}


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
    if args.json:
        print(json.dumps(summary, default=float))
    else:
        _print_human(summary)
    return 0
