"""What people look at: exported videos, grids and gallery, W&B tracking, the run summary."""
