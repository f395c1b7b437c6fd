"""The metrics an edit is judged by, as one collection: Sdir, SC, ID and, in the synth world, accuracy and leakage.

`update(source, edited, source_labels=labels)` feeds them all; each takes the arguments it needs.
"""

from torch import Tensor
from torchmetrics import Metric, MetricCollection

from metrics.attribute_edit import AttributeEditAccuracy, AttributeLeakage
from metrics.directional_clip import DirectionalCLIPSimilarity
from metrics.identity_similarity import IdentitySimilarity
from metrics.segmentation_consistency import SegmentationConsistency


def edit_metrics(judges, attribute: str, source_text: str, target_text: str) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {
        "sdir": DirectionalCLIPSimilarity(judges.clip, source_text, target_text),
        "sc": SegmentationConsistency(judges.parser),
        "id": IdentitySimilarity(judges.identity),
    }
    if judges.attributes is not None:
        metrics["edit_success"] = AttributeEditAccuracy(judges.attributes, attribute)
        metrics["leakage"] = AttributeLeakage(judges.attributes, attribute)
    return metrics


def edit_scores(collection: MetricCollection) -> dict[str, float]:
    """The computed collection as flat names: sdir, sc (mIoU), sc_pixel_acc, id, edit_success, leakage."""
    renamed = {"miou": "sc", "pixel_acc": "sc_pixel_acc"}
    computed: dict[str, Tensor] = collection.compute()
    return {renamed.get(name, name): float(value) for name, value in computed.items()}
