"""The job side: manifest, images, plan, the runner, shards and the output folder's records."""
