"""The chat's renderer: an edit plan applied to one image's cached latents by the mapper editor."""

from collections.abc import Callable

import torch
from PIL import Image

from chat.plan import EditPlan, PlanError
from chatface.editor import Editor, MapperMissingError
from chatface.images import to_pil


def plan_renderer(editor: Editor, image: torch.Tensor) -> Callable[[EditPlan], Image.Image]:
    """`render(plan)` for a ChatSession. The image (3, H, W) is encoded once and inverted once per step count;
    every turn starts from those latents. An attribute without a trained mapper is a PlanError the chat shows."""
    faces = editor.latents(image[None])

    def render(plan: EditPlan) -> Image.Image:
        edits = [(edit.attribute, edit.strength) for edit in plan.edits]
        try:
            return to_pil(editor.edit(faces, edits, plan.steps)[0])
        except MapperMissingError as error:
            raise PlanError(str(error)) from None

    return render
