"""The chat layer: requests in words -> validated edit plans (offline or LLM parser) -> multi-turn sessions."""
