"""How good are the synth judges? Their figures on held-out test identities (see metrics/README.md).

The test set is K unseen identities with two faces each (attributes and scene drawn independently), plus, for
the CLIP direction test, each face next to itself with one attribute switched on.
"""

import numpy as np
import torch
from omegaconf import DictConfig
from torchmetrics.classification import BinaryAUROC, MulticlassJaccardIndex

from chatface.catalog import default_catalog
from datamodules.synthface import SynthFaceDataset, face_labels, render_faces
from networks.judges.loading import Judges, load_judges
from synthface import ATTRIBUTES, NUM_CLASSES
from synthface.captions import NOUN_PHRASES

FAR = 1e-3


@torch.no_grad()
def evaluate_judges(cfg: DictConfig, identities: int = 256) -> dict[str, float]:
    judges = load_judges(cfg.judges)
    dataset = SynthFaceDataset("test", 2 * identities, identities, cfg.world.image_size)
    faces = [dataset.face(i) for i in range(len(dataset))]
    images, masks = render_faces(faces)
    labels = face_labels(faces).bool()
    return {
        "clip_zero_shot_acc": clip_zero_shot_accuracy(judges, images, labels),
        "clip_direction_top1": clip_direction_top1(judges, faces[:identities], images[:identities]),
        **identity_verification(judges, images, identities, labels),
        "parser_miou": parser_miou(judges, images, masks),
        "attribute_acc": float(((judges.attributes.predict(images) >= 0.5) == labels).float().mean()),
        "test_identities": identities,
    }


def clip_zero_shot_accuracy(judges: Judges, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Per attribute, "a face with X" vs "a face without X"; balanced accuracy (mean of the hit rates on faces
    with and without X), averaged over the attributes that some faces have and some lack."""
    features = judges.clip.encode_image(images)
    scores = []
    for index, name in enumerate(ATTRIBUTES):
        texts = judges.clip.encode_text([f"a face with {NOUN_PHRASES[name]}", f"a face without {NOUN_PHRASES[name]}"])
        says_present = (features @ texts.T).argmax(dim=1) == 0
        truth = labels[:, index]
        scores.append(0.5 * ((says_present[truth]).float().mean() + (~says_present[~truth]).float().mean()))
    return float(torch.stack(scores).nanmean())  # an attribute on all or none of the faces has no balanced score


def clip_direction_top1(judges: Judges, faces, images: torch.Tensor) -> float:
    """For each face and one attribute it lacks (switched on), does that attribute's text direction have the
    highest cosine with the image difference among all SynthFace attributes' directions?"""
    catalog, rng = default_catalog(), np.random.default_rng(0)
    targets = [str(rng.choice([n for n in ATTRIBUTES if n not in face.attributes])) for face in faces]
    edited, _ = render_faces([face.with_attribute(name) for face, name in zip(faces, targets)])
    delta = judges.clip.encode_image(edited) - judges.clip.encode_image(images)
    directions = torch.stack([judges.clip.text_direction(catalog[n].source, catalog[n].target) for n in ATTRIBUTES])
    best = (delta @ directions.T).argmax(dim=1)
    return float((best == torch.tensor([ATTRIBUTES.index(n) for n in targets])).float().mean())


def identity_verification(judges: Judges, images: torch.Tensor, identities: int, labels: torch.Tensor
                          ) -> dict[str, float]:
    """Genuine pairs: the two faces of one identity, kept where their attributes differ; impostor pairs: faces
    of different identities. ROC AUC, and the true-accept rate at a false-accept rate of 1e-3."""
    embeddings = judges.identity.embed(images)
    cosine = embeddings @ embeddings.T
    person = torch.arange(len(images)) % identities
    first, second = torch.triu_indices(len(images), len(images), offset=1)
    same = person[first] == person[second]
    differs = (labels[first] != labels[second]).any(dim=1)
    keep = ~same | differs
    scores, genuine = cosine[first, second][keep], same[keep]
    threshold = torch.quantile(scores[~genuine], 1 - FAR)
    auc = BinaryAUROC()(scores, genuine.long())
    return {"id_roc_auc": float(auc), "id_tar_at_far_1e-3": float((scores[genuine] > threshold).float().mean()),
            "id_genuine_pairs": int(genuine.sum())}


def parser_miou(judges: Judges, images: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean over the classes present of the intersection-over-union with SynthFace's exact class maps."""
    miou = MulticlassJaccardIndex(NUM_CLASSES, average="macro")
    return float(miou(judges.parser.parse(images), masks))
