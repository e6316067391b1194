"""recbole-hybrid: hybrid (collaborative + content) recommenders as a RecBole plugin."""

from recbole_hybrid import compat  # noqa: F401  (patches RecBole for today's libraries first)
from recbole_hybrid import evaluator  # noqa: F401  (registers TRecall with RecBole's metrics)

__version__ = "0.1.0"
