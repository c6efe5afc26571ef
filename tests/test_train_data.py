"""The dataset code of the training pipeline (no torch needed)."""

import numpy as np
import pytest


def test_a_learning_curve_subsample_is_a_stable_stratified_part_of_the_split() -> None:
    from kiosk.train.data import Annotation, stratified_split, subsample

    # 40 images whose rarest class is with (0), 12 without (1), 4 incorrect (2), 4 with no face
    anns = [Annotation("w{}.jpg".format(i), 10, 10, labels=np.array([0])) for i in range(40)]
    anns += [Annotation("o{}.jpg".format(i), 10, 10, labels=np.array([0, 1])) for i in range(12)]
    anns += [Annotation("i{}.jpg".format(i), 10, 10, labels=np.array([2])) for i in range(4)]
    anns += [Annotation("n{}.jpg".format(i), 10, 10) for i in range(4)]
    train = stratified_split(anns)["train"]
    half = subsample(anns, train, 0.5)
    assert set(half) < set(train) and half == sorted(half) == subsample(anns, train, 0.5)  # a stable subset
    kinds = lambda names: {k: sum(n.startswith(k) for n in names) for k in "woin"}  # noqa: E731
    assert {k: round(v / 2) for k, v in kinds(train).items()} == kinds(half)  # every stratum halved
    assert kinds(subsample(anns, train, 0.01))["i"] == 1  # the rare class is never dropped
    assert subsample(anns, train, 1.0) == sorted(train)
    with pytest.raises(ValueError, match="fraction"):
        subsample(anns, train, 0.0)
