"""Why the model said what it said: Integrated Gradients (Captum) per row, permutation importance for the whole
set, and a deletion check of faithfulness -- in the unit the user thinks in (columns for tables, pixels for images,
tokens for text), which each input type names (``InputType.attribution``, ``explain_baseline``).

Modules: ``space`` (attribution space and Integrated Gradients), ``rows`` (``explain_rows``, the contract
``lamina serve``'s ``POST /explain`` uses), ``importance`` (permutation importance, the deletion check), ``charts``,
``pages`` (HTML pieces and the printed table), ``command`` (``lamina explain``).
"""

from lamina.explain.charts import charts, global_attributions
from lamina.explain.command import explain
from lamina.explain.importance import faithfulness, permutation_importance
from lamina.explain.pages import faithfulness_html, print_explanations, tokens_html
from lamina.explain.rows import explain_rows
from lamina.explain.space import STEPS, Attribution, Space, attribute
from lamina.pages import html_page, table_html

__all__ = ["Attribution", "STEPS", "Space", "attribute", "charts", "explain", "explain_rows", "faithfulness",
           "faithfulness_html", "global_attributions", "html_page", "permutation_importance", "print_explanations",
           "table_html", "tokens_html"]
