"""The GPU side: models, hardware profiles, the UNet's fast paths, compiled artifacts, VideoGenerator."""

import logging
import os

# transformers' notices (a missing torchvision, ...) are not ours to show; errors still are. Set before transformers
# is imported, which happens only when a model loads (dry runs never import it).
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class _DropNotice(logging.Filter):
    """diffusers warns on every SVD call that casting its VAE for the float32 upcast 'can lead to inconsistent
    results' (the pipeline's own `vae.to(float32)`; nothing a user can act on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32" not in record.getMessage()


logging.getLogger("diffusers.models.modeling_utils").addFilter(_DropNotice())
