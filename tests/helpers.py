"""Assertions shared by the model tests."""

from recbole_hybrid.quick_start import run_recbole_hybrid


def assert_same_seed_same_metrics(model, dataset, config_dict):
    """Two runs with the same config (and seed) give identical validation and test metrics."""
    first = run_recbole_hybrid(model, dataset, config_dict=config_dict, saved=False)
    second = run_recbole_hybrid(model, dataset, config_dict=config_dict, saved=False)
    assert first["test_result"] == second["test_result"]
    assert first["best_valid_result"] == second["best_valid_result"]


def assert_checkpoint_round_trip(trained, fresh, batch, path):
    """``fresh`` (same config, untrained) predicts ``batch`` differently from ``trained``
    until it loads ``trained``'s saved state_dict, then identically. Leaves ``fresh`` loaded."""
    import torch

    torch.save(trained.state_dict(), path)
    trained.eval()
    fresh.eval()
    with torch.no_grad():
        assert not torch.allclose(trained.predict(batch), fresh.predict(batch))
        fresh.load_state_dict(torch.load(path, weights_only=True))
        assert torch.equal(trained.predict(batch), fresh.predict(batch))
