"""Registers this package's metrics with RecBole's, so ``metrics: ['TRecall']`` works."""

from recbole.evaluator import register

from recbole_hybrid.evaluator.metrics import TRecall

EXTRA_METRICS = [TRecall]


def register_metrics():
    # RecBole's Config, Evaluator and Register import these dicts: update them in place
    for metric in EXTRA_METRICS:
        name = metric.__name__.lower()
        register.metrics_dict[name] = metric
        register.metric_information[name] = metric.metric_need
        register.metric_types[name] = metric.metric_type
        if metric.smaller and name not in register.smaller_metrics:
            register.smaller_metrics.append(name)


register_metrics()
