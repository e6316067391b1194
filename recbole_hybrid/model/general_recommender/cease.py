r"""CEASE: collective EASE with side-information.

Reference: Olivier Jeunen, Jan Van Balen and Bart Goethals, "Closed-Form Models for
Collaborative Filtering with Side-Information", RecSys 2020 (late-breaking results).

EASE (model/closed_form.py) fitted on the interaction matrix X (users x items) stacked with
the items' content as extra rows, each content dimension a pseudo-user of weight w:

    X~ = [X ; w S^T],   G = X~^T X~ = X^T X + w^2 S S^T,   B = EASE(G, lambda),   s_u = x_u B

so item-item weights learn from co-occurrence and shared content alike. S is the item
content (``content_field``, sparse) as ``content_norm`` rows. ``side_weight: 0`` is EASE. An
item without training interactions has a zero X column: its weights come from its content.
``untrained_inputs: drop`` keeps such items out of the inputs (closed_form.ease_weights).
"""

from recbole_hybrid.model.closed_form import ItemItemRecommender, ease_weights, gram


class CEASE(ItemItemRecommender):
    def __init__(self, config, dataset):
        self.reg_weight, self.side_weight = config["reg_weight"], config["side_weight"]
        super().__init__(config, dataset)

    def item_weights(self, interactions, side_rows):
        """B = EASE(X^T X + w^2 S S^T, lambda)."""
        return ease_weights(
            gram(interactions) + gram(side_rows, self.side_weight),
            self.reg_weight,
            self.inputs(interactions),
        )
