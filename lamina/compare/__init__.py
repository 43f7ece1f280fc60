"""The classical counterpart: what does deep learning buy on this data? The deep model and classical models with
engineered features, trained on exactly the same train / validation / test split (``load_splits``), scored with the
same metrics (each output type's own ``metrics``, the decision threshold tuned on validation the same way).

Each input type brings its own features and family of models (``InputType.classical``; ``lamina.inputs.classical``):
the values themselves for numbers, binaries and categories (LightGBM and a linear model), multi-hot for sets, summary
statistics for series, MFCC statistics for audio, TF-IDF for text (a logistic regression), HOG and pixels for images
(PCA + an RBF SVM). Each output type says what a classical model predicts for it and which metric judges it
(``OutputType.task``, ``classical_raw``, ``primary_metric``); a text output brings its own counterparts.

Modules: ``features`` (the inputs' features), ``models`` (training and scoring), ``verdict``, ``charts`` (table,
chart, files), ``command`` (``lamina compare``).
"""

from lamina.compare.charts import chart, print_comparison, table_rows, write_comparison
from lamina.compare.command import compare
from lamina.compare.models import counterparts, deep_row
from lamina.compare.verdict import headline, summarise, verdict
from lamina.inputs.image_classical import hog

__all__ = ["chart", "compare", "counterparts", "deep_row", "headline", "hog", "print_comparison", "summarise",
           "table_rows", "verdict", "write_comparison"]
