"""The one training loop and the tasks it trains.

``loop`` is the epoch loop (AdamW, schedule, clipping, precision, compile, DDP, early stopping, checkpoint and
resume, progress), ``task`` the interface it drives (the batches of an epoch, the loss of a batch, the validation
score), ``session`` what surrounds a run (seeds, device, DDP group, the checkpoint resumed from), ``state`` the
checkpoint, ``steps`` the shared pieces of a step. ``supervised`` is the network task and ``fit``; the two-tower
recommender is the task in ``lamina.ranking.task``. Every model Lamina trains goes through ``loop.train``.
"""

from lamina.training.splits import TRAIN_GENERATE, Split
from lamina.training.splits import scored_rows as _scored_rows
from lamina.training.state import METRICS_LOG
from lamina.training.steps import check_finite, lr_factor, pick_device, seed_everything, update
from lamina.training.supervised import Fitted, fit

__all__ = ["fit", "Fitted", "Split", "METRICS_LOG", "TRAIN_GENERATE", "check_finite", "lr_factor", "pick_device",
           "seed_everything", "update", "_scored_rows"]
