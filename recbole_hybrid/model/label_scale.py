"""``rating_rescale`` (data/training_split.py scales the training labels to [0, 1]): the
model's predictions mapped back to the rating scale, so RecBole's evaluator computes RMSE / MAE
on that scale."""


def restore_label_scale(model, train):
    """``rating_rescale``: the model's ``predict`` (a probability) mapped back to the rating
    scale of the training labels. Nothing without it."""
    scale = getattr(train, "label_range", None)
    if scale is None:
        return model
    low, high = scale
    predict = model.predict

    def rescaled(interaction):
        return low + (high - low) * predict(interaction)

    model.predict = rescaled
    model.label_range = scale
    return model
