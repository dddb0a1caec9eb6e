"""Deployment of the CAI stack files to the instance (CAI-5.x): plan, upload, ``docker compose up -d --wait``
streamed line by line, then a watch of the containers until healthy, failed or timed out. ``cai-tui deploy``."""
