from recbole_hybrid.data.dataset import HybridDataset
from recbole_hybrid.data.utils import create_dataset, data_preparation

__all__ = ["HybridDataset", "create_dataset", "data_preparation"]
