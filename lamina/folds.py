"""Cross-fitting for small training sets (``trainer.folds``): k networks, one per fold, averaged.

With a few hundred rows a 70/15/15 split leaves a validation split of a few dozen rows: too few to stop training
at the right epoch, and far too few to choose a decision threshold on. Here the training and validation rows are
pooled and cut into k folds (stratified on the first class target); network i trains on the other folds and
early-stops on fold i (``lamina.training.fit``, unchanged). Every row then has an out-of-fold prediction, and the
decision threshold (and any other calibration an output type does) is tuned on all of them. The model predicts
with the members' average (``lamina.ensemble``). The test split stays held out.

``auto`` picks 5 folds when the pooled rows are under ``AUTO_FOLD_ROWS`` and no input is read from files, else 1
(docs/benchmarks.md, 'Small tables': at 8,500 rows five folds cost 5-8x the training time for no measurable gain;
at 170 rows they lift ROC-AUC and tune the threshold on 170 rows instead of 30).

While training, ``<run>/fold<i>/`` holds fold i's checkpoint and, once done, its network (``member.safetensors``
and ``member.json``), so ``--resume`` skips finished folds and resumes the interrupted one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from lamina import distributed
from lamina.checkpoint import STATE, write_atomic
from lamina.config import AUTO_FOLD_ROWS, AUTO_FOLDS, Config
from lamina.data.stream import ParquetStream
from lamina.ensemble import Ensemble
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.model import Network
from lamina.outputs import OUTPUT_TYPES
from lamina.predictor import Predictor, run_network
from lamina.preprocessor import Preprocessor
from lamina.training import Fitted, fit

log = logging.getLogger("lamina")
PLAN, MEMBER_WEIGHTS, MEMBER_INFO = "folds.json", "member.safetensors", "member.json"


def folds_for(config: Config, rows: int) -> int:
    """How many folds ``trainer.folds`` means for ``rows`` training + validation rows."""
    folds = config.trainer.folds
    generates = any(OUTPUT_TYPES[s.type].sequence for s in config.outputs)
    # Folds of rows would put a person in training and in the held-out fold: identity models are split by person.
    by_person = any(OUTPUT_TYPES[s.type].split_by_value for s in config.outputs)
    if folds == "auto":
        # Inputs read from files (images, audio) train conv encoders at seconds an epoch: five of them would
        # multiply a first model's wait, so auto keeps one network there (ask for N to cross-fit them).
        files = any(INPUT_TYPES[s.type].holds_paths for s in config.inputs)
        small = AUTO_FOLDS * 2 <= rows < AUTO_FOLD_ROWS and not files
        blocked = config.data.streaming or generates or by_person or distributed.requested()
        return AUTO_FOLDS if small and not blocked else 1
    if folds > 1 and (config.data.streaming or generates or by_person or distributed.requested()):
        why = ("data.streaming" if config.data.streaming else "a text output" if generates
               else "an identity output (split by person)" if by_person else "torchrun")
        raise LaminaError(f"trainer.folds: {folds} cannot be used with {why}; set trainer.folds to 1 or auto")
    return folds


def fit_auto(config: Config, frames: dict[str, pd.DataFrame], sources: dict[str, str] | None = None,
             workdir: Path | None = None, resume: bool = False, verbose: bool = True,
             cache_dir: Path | None = None, stream: ParquetStream | None = None) -> Fitted:
    """``fit`` with one network, or ``fit_folds`` when ``trainer.folds`` asks for cross-fitting."""
    rows = len(frames["train"]) + len(frames.get("validation", ()))
    k = folds_for(config, rows)
    if k == 1:
        return fit(config, frames, sources, workdir=workdir, resume=resume, verbose=verbose, cache_dir=cache_dir,
                   stream=stream)
    return fit_folds(config, frames, k, sources, workdir=workdir, resume=resume, verbose=verbose,
                     cache_dir=cache_dir)


def assign_folds(values: torch.Tensor, k: int, seed: int) -> np.ndarray:
    """Each row's fold: stratified when the target is a class index, else shuffled."""
    from sklearn.model_selection import KFold, StratifiedKFold

    y = values.numpy()
    classes = not values.is_floating_point() and y.ndim == 1 and np.bincount(y - y.min()).max() >= k
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed) if classes else KFold(k, shuffle=True,
                                                                                         random_state=seed)
    fold = np.zeros(len(y), dtype=np.int64)
    with warnings.catch_warnings():  # a class with fewer rows than folds: sklearn warns, the split still works
        warnings.simplefilter("ignore", UserWarning)
        for i, (_, held) in enumerate(splitter.split(np.zeros(len(y)), y if classes else None)):
            fold[held] = i
    return fold


def _pool(prep: Preprocessor, frames: dict[str, pd.DataFrame], sources: dict[str, str]) -> pd.DataFrame:
    """The training and validation rows together, cleaned as ``fit`` cleans its splits (after fitting ``prep``)."""
    parts = []
    for name in ("train", "validation"):
        frame = frames.get(name)
        if frame is not None and len(frame):
            source = sources.get(name) or name
            frame = prep.drop_bad_inputs(prep.drop_missing_targets(frame, source), source)
            parts.append(prep.drop_unseen_classes(frame, source) if name != "train" else frame)
    pool = pd.concat(parts) if len(parts) > 1 else parts[0]
    return pool.reset_index(drop=True)


def _check_plan(workdir: Path, plan: dict[str, Any], resume: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / PLAN
    if resume and path.is_file() and json.loads(path.read_text(encoding="utf-8")) != plan:
        raise LaminaError(f"{workdir}: the data or the folds changed since this run started; train without "
                          "--resume to start over")
    write_atomic(path, lambda p: p.write_text(json.dumps(plan), encoding="utf-8"))


def _load_member(folder: Path | None, prep: Preprocessor) -> tuple[Network, dict[str, Any]] | None:
    if folder is None or not (folder / MEMBER_INFO).is_file():
        return None
    net = prep.network()
    net.load_state_dict(load_file(str(folder / MEMBER_WEIGHTS)))
    return net.eval(), json.loads((folder / MEMBER_INFO).read_text(encoding="utf-8"))


def _save_member(folder: Path, net: Network, info: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    write_atomic(folder / MEMBER_WEIGHTS, lambda p: save_file(state, str(p)))
    write_atomic(folder / MEMBER_INFO, lambda p: p.write_text(json.dumps(info), encoding="utf-8"))
    for leftover in folder.glob("checkpoint.*"):  # the member is what resume needs now
        leftover.unlink()


def clean(workdir: Path) -> None:
    """Remove the folds' working files from a finished run folder (the model directory holds the members)."""
    (workdir / PLAN).unlink(missing_ok=True)
    for folder in workdir.glob("fold*"):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def fit_folds(config: Config, frames: dict[str, pd.DataFrame], k: int, sources: dict[str, str] | None = None,
              workdir: Path | None = None, resume: bool = False, verbose: bool = True,
              cache_dir: Path | None = None, on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> Fitted:
    """Train ``k`` networks by cross-fitting and return their ensemble, calibrated out of fold.

    ``on_epoch(fold, record)`` sees each member's epochs once checkpointed (folds count from 1), as ``fit``'s
    ``on_epoch`` does: a tuner can prune there, a test can stop the run as a crash would."""
    sources = sources or {}
    # Fitted on the training split, as ``fit`` fits it (its errors name the same rows); validation rows join the
    # pool afterwards, cleaned as a held-out split is.
    prep = Preprocessor(config, cache_dir=cache_dir).fit(frames["train"], sources.get("train"))
    pool = _pool(prep, frames, sources)
    if len(pool) < 2 * k:
        raise LaminaError(f"trainer.folds: {k} folds need at least {2 * k} training rows, there are {len(pool)}; "
                          "lower trainer.folds")
    first = prep.outputs[0]
    fold = assign_folds(first.transform(pool[first.name]), k, config.trainer.seed)
    state = json.dumps(prep.state())
    if workdir is not None:
        digest = hashlib.sha256(fold.tobytes() + state.encode()).hexdigest()
        _check_plan(workdir, {"folds": k, "rows": len(pool), "digest": digest}, resume)
    members, infos = [], []
    for i in range(k):
        folder = workdir / f"fold{i + 1}" if workdir is not None else None
        done = _load_member(folder, prep) if resume else None
        if done is None:
            done = _fit_member(config, pool, fold, i, k, state, sources, folder, resume, verbose, cache_dir,
                               on_epoch)
        members.append(done[0])
        infos.append(done[1])
    return _ensemble(prep, members, infos, pool, fold, frames, sources)


def _fit_member(config: Config, pool: pd.DataFrame, fold: np.ndarray, i: int, k: int, state: str,
                sources: dict[str, str], folder: Path | None, resume: bool, verbose: bool, cache_dir: Path | None,
                on_epoch: Callable[[int, dict[str, Any]], None] | None) -> tuple[Network, dict[str, Any]]:
    # Each member its own seed: different initial weights and batch orders, as well as different rows.
    member = config.model_copy(update={"trainer": config.trainer.model_copy(update={"seed": config.trainer.seed + i})})
    if verbose:
        log.info("fold %d of %d: %d training rows, %d held out", i + 1, k, int((fold != i).sum()),
                 int((fold == i).sum()))
    frames = {"train": pool[fold != i], "validation": pool[fold == i]}
    fitted = fit(member, frames, {"train": sources.get("train", "train")}, workdir=folder,
                 resume=resume and folder is not None and (folder / STATE).is_file(), verbose=verbose,
                 on_epoch=None if on_epoch is None else functools.partial(on_epoch, i + 1),
                 cache_dir=cache_dir, preprocessing=json.loads(state), calibrate=False)
    net = fitted.predictor.network
    info = {"fold": i + 1, "best_epoch": fitted.best_epoch, "epochs_run": len(fitted.history),
            "validation": fitted.predictor.metrics.get("validation", {})}
    if folder is not None:
        _save_member(folder, net, info)
    return net.eval(), info


def _ensemble(prep: Preprocessor, members: list[Network], infos: list[dict[str, Any]], pool: pd.DataFrame,
              fold: np.ndarray, frames: dict[str, pd.DataFrame], sources: dict[str, str]) -> Fitted:
    """The members' average, calibrated and scored on the out-of-fold predictions, and scored on the test split."""
    inputs = prep.inputs_to_tensors(pool, sources.get("train"))
    oof: dict[str, np.ndarray] = {}
    for i, net in enumerate(members):
        held = torch.from_numpy(np.flatnonzero(fold == i))
        for name, raw in run_network(net, {key: v[held] for key, v in inputs.items()}).items():
            oof.setdefault(name, np.zeros((len(pool), raw.shape[1]), np.float32))[held.numpy()] = raw
    for t in prep.outputs:
        t.calibrate(oof[t.name], pool[t.name])
    predictor = Predictor(prep, Ensemble([m.cpu() for m in members], prep.outputs))
    metrics = {"train": predictor.score(pool, inputs),
               # every pooled row scored by the network that did not train on it: the honest validation figure
               "validation": {t.name: {"rows": len(pool), **t.metrics(pool[t.name], oof[t.name])}
                              for t in prep.outputs}}
    test = frames.get("test")
    if test is not None and len(test):
        source = sources.get("test") or "test split"
        test = prep.drop_unseen_classes(prep.drop_bad_inputs(prep.drop_missing_targets(test, source), source),
                                        source)
        if len(test):
            metrics["test"] = predictor.score(test, prep.inputs_to_tensors(test, source))
    prep.set_cache_dir(None)
    best = [int(x["best_epoch"]) for x in infos]
    predictor.info.update({
        "metrics": metrics, "best_epoch": int(np.median(best)), "epochs_run": int(np.median([x["epochs_run"]
                                                                                             for x in infos])),
        "folds": {"k": len(members), "rows": len(pool), "best_epochs": best,
                  "epochs_run": [int(x["epochs_run"]) for x in infos],
                  "validation": "out-of-fold predictions of every training and validation row"},
    })
    return Fitted(predictor, [], int(np.median(best)))
