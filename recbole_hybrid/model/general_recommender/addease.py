r"""AddEASE (ADD-EASE): two EASE models, one on interactions and one on content, added.

Reference: Olivier Jeunen, Jan Van Balen and Bart Goethals, "Closed-Form Models for
Collaborative Filtering with Side-Information", RecSys 2020 (late-breaking results).

    B_X = EASE(X^T X, lambda),   B_S = EASE(S S^T, lambda_S),
    B = (1 - m) B_X + m B_S,   s_u = x_u B

with X the interactions (users x items), S the item content (``content_field``, sparse, as
``content_norm`` rows: each content dimension a pseudo-user of the content model) and m the
mix ``side_mix``, chosen on validation. An item without training interactions is scored by
B_S alone; ``untrained_inputs: drop`` keeps such items out of B_S's inputs
(closed_form.ease_weights; B_X has none).
"""

from recbole_hybrid.model.closed_form import ItemItemRecommender, ease_weights, gram


class AddEASE(ItemItemRecommender):
    def __init__(self, config, dataset):
        self.reg_weight, self.side_reg_weight = config["reg_weight"], config["side_reg_weight"]
        self.side_mix = config["side_mix"]
        if not 0 <= self.side_mix <= 1:
            raise ValueError(f"side_mix {self.side_mix}: a weight in [0, 1]")
        super().__init__(config, dataset)

    def item_weights(self, interactions, side_rows):
        """B = (1 - m) EASE(X^T X, lambda) + m EASE(S S^T, lambda_S)."""
        weights = ease_weights(gram(interactions), self.reg_weight) * (1 - self.side_mix)
        side = ease_weights(gram(side_rows), self.side_reg_weight, self.inputs(interactions))
        weights += side * self.side_mix
        return weights
