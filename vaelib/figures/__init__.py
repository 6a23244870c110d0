"""Presentation: image grids and saving (`grids`), VAE figures (`vae`), editing plots (`editing`), printed tables
(`tables`), slider panels (`widgets`) and the README's overview picture (`overview`)."""
