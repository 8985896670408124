"""Build the digits classifier and small pretrained digits checkpoints for the explorer (seeded, CPU).

    python scripts/make_digits_assets.py                       # every model below (checks the classifier)
    python scripts/make_digits_assets.py 0-4 --out-dir /tmp/a  # only some, elsewhere
    python scripts/make_digits_assets.py --classifier-only     # rebuild assets/digits_classifier.pt alone

The classifier is shipped in ``assets/digits_classifier.pt``; gft.evaluation.classifier checks it on
load and never retrains it, so ``--classifier-only`` is the one way to rebuild it (about a minute; the
models' FD depends on it, so rebuild it before them). A model run first checks the classifier, so a
broken one fails before any training. Each model is the default digits convnet (gft.tasks.digits.DigitsTask.model_config()) pretrained with plain
flow matching, independent coupling, batch 128, seed 0, on ``digits:<name>``, and written as
``digits_pretrained_<name>.pt`` (a name the 2D asset glob ``pretrained_*.pt`` does not match).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gft.core.checkpoints import save_checkpoint  # noqa: E402
from gft.core.training import TrainConfig  # noqa: E402
from gft.data.digits import parse_digits_spec  # noqa: E402
from gft.evaluation import classifier  # noqa: E402
from gft.evaluation.images import evaluate_images  # noqa: E402
from gft.tasks.digits import DigitsTask  # noqa: E402
from gft.tasks.runs import Monitor, make_trainer  # noqa: E402

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets"
# The sources a story needs: new classes (0-4 -> 5-9) and style shifts (0-9 -> 0-9+invert -> ...).
SHIPPED_DIGITS = ("0-4", "0-9")


def make(name: str, steps: int, seed: int, out_dir: Path) -> dict:
    spec = f"digits:{name}"
    task = DigitsTask(spec)
    config = TrainConfig(
        method="pretrain",
        steps=steps,
        batch=task.default_batch,
        lr=1e-3,
        seed=seed,
        device="cpu",
        callback_every=250,
    )
    # The cheap training FD every quarter, kept in the checkpoint's history.
    trainer = make_trainer(task, config, monitor=Monitor(eval_every=max(steps // 4, 1)))
    try:
        result = trainer.run()
    finally:
        trainer.close()
    metrics = evaluate_images(trainer.model, spec, n=1000, seed=seed).to_dict()
    extra = {"parent": None, "history": result.history, "limit": None, "made_by": "scripts/make_digits_assets.py", "fd": metrics["fd"]}
    path = out_dir / f"digits_pretrained_{name}.pt"
    save_checkpoint(path, trainer.model, spec, config.to_dict(), extra)
    keys = ("fd", "fd_floor", "target_fraction", "class_entropy", "nn_distance_ratio")
    return {"name": name, "path": str(path), "steps_per_second": result.steps_per_second, **{k: metrics[k] for k in keys}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"class specs, default {SHIPPED_DIGITS}")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=ASSET_DIR)
    parser.add_argument("--classifier-only", action="store_true", help="rebuild the digits classifier and build no model")
    parser.add_argument("--classifier-path", type=Path, default=classifier.DEFAULT_PATH,
                        help="where --classifier-only writes (the models are always scored with the shipped one)")
    args = parser.parse_args(argv)
    if args.classifier_only and args.names:
        parser.error("--classifier-only builds no model: drop the class specs")
    args.names = args.names or list(SHIPPED_DIGITS)
    for name in args.names:
        try:
            parse_digits_spec(f"digits:{name}")  # a bad spec fails before any training
        except ValueError as exc:
            parser.error(str(exc))
    torch.set_num_threads(2)
    if args.classifier_only:
        start = time.perf_counter()
        model = classifier.build_classifier(args.classifier_path)
        acc = classifier.accuracy(model, parse_digits_spec("digits:0-9"))
        print(f"classifier: wrote {args.classifier_path}, held-out accuracy {acc:.3f}  {time.perf_counter() - start:.1f} s", flush=True)
        return 0
    try:
        classifier.load_classifier()  # fail now, not after the first model's training
    except classifier.ClassifierFileError as exc:
        parser.exit(1, f"{exc}\n")
    for name in args.names:
        print(json.dumps(make(name, args.steps, args.seed, args.out_dir)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
