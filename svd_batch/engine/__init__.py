"""The GPU side: models, hardware profiles, the UNet's fast paths, compiled artifacts, VideoGenerator."""
