"""Trainer subclasses for models trained in stages: ``<Model>Trainer`` is found by
``recbole_hybrid.utils.get_trainer``; models without one use RecBole's Trainer."""
