"""The inversion-caching pipeline gives what the pipeline gives, inverting each face once per walk."""

import torch

from chatface.backbone_eval import backbone_pipeline
from chatface.config import load_config
from datamodules.synthface import SynthFaceDataset
from diffusion.inversion_cache import InversionCachingPipeline


def test_each_face_is_inverted_once_per_walk_and_as_the_pipeline_inverts_it(tiny_world):
    pipe = backbone_pipeline(load_config(tiny_world))
    faces = SynthFaceDataset("test", 3, 3, 64)
    image = torch.stack([faces[i]["image"] for i in range(3)])
    with torch.no_grad():
        z = pipe.encode(image)
    caching = InversionCachingPipeline(pipe)
    seen = []
    hook = pipe.model.register_forward_pre_hook(lambda net, args: seen.append(len(args[0])))
    try:
        first = caching.invert(image[:2], z[:2], 3, t_max=400)
        mixed = caching.invert(image[[2, 1, 0]], z[[2, 1, 0]], 3, t_max=400)  # only face 2 is new
        other_walk = caching.invert(image[:1], z[:1], 3)  # another walk (to T): inverted anew
    finally:
        hook.remove()
    assert seen == [2] * 3 + [1] * 3 + [1] * 3
    with torch.no_grad():  # batches of other sizes may round differently
        assert torch.allclose(mixed, pipe.invert(image[[2, 1, 0]], z[[2, 1, 0]], 3, t_max=400), atol=1e-6)
        assert torch.allclose(other_walk, pipe.invert(image[:1], z[:1], 3), atol=1e-6)
    assert torch.equal(mixed[1:], first[[1, 0]])
    assert InversionCachingPipeline.around(caching) is caching
